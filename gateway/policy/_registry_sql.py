"""The agreement registry's SQL: the reads behind a snapshot and the writes of each step.

Statements are ``(sql, args)`` pairs with ``?`` placeholders, run by
:class:`~gateway.policy._registry_db.RegistryDb` in one transaction per call. A state change
is conditional on the state it was decided against, so a concurrent change makes it a no-op
or a :class:`~gateway.policy._registry_db.Conflict`, never a silent overwrite.
"""

from __future__ import annotations

from gateway.auth import Principal
from gateway.policy._model import Agreement
from gateway.policy._registry_db import COLUMNS, Stmt
from gateway.policy._registry_types import ACTIVE, PROPOSED, SUPERSEDED, AgreementRecord, who

#: Every proposal row (``COLUMNS`` order) and every approval, oldest approval first.
READ_ALL = [(f"SELECT {COLUMNS} FROM agreement_proposals ORDER BY agreement_id, version", ()),
            ("SELECT proposal_id, approver_org, approver_subject FROM agreement_approvals"
             " ORDER BY approved_at, approver_org, approver_subject", ())]
#: Cheap change detection: re-read :data:`READ_ALL` only when this differs.
FINGERPRINT = [("SELECT COUNT(*), MAX(changed_at) FROM agreement_proposals", ()),
               ("SELECT COUNT(*) FROM agreement_approvals", ())]


def insert_proposal(pid: str, agreement: Agreement, document: str, actor: Principal,
                    now: str) -> Stmt:
    """A new proposal row, in state ``proposed``."""
    return (f"INSERT INTO agreement_proposals ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (pid, agreement.id, agreement.version, agreement.content_hash, document,
             "proposal", actor.org, actor.subject, now, PROPOSED, now,
             who(actor.org, actor.subject)))


def insert_approval(proposal_id: str, actor: Principal, now: str) -> Stmt:
    """One auditor's approval of one proposal (unique per auditor)."""
    return ("INSERT INTO agreement_approvals (proposal_id, approver_org, approver_subject,"
            " approved_at) VALUES (?,?,?,?)", (proposal_id, actor.org, actor.subject, now))


def activate_proposal(proposal_id: str, me: str, now: str) -> Stmt:
    """A proposed proposal becomes active."""
    return ("UPDATE agreement_proposals SET state = ?, changed_at = ?, changed_by = ?"
            " WHERE proposal_id = ? AND state = ?",
            (ACTIVE, now, me, proposal_id, PROPOSED))


def set_state(rec: AgreementRecord, state: str, me: str, now: str) -> list[Stmt]:
    """An active version leaves that state; a file agreement gets its first row."""
    if rec.origin == "file" and rec.proposal_id.startswith("file:") and not rec.proposed_at:
        a = rec.agreement
        return [(f"INSERT INTO agreement_proposals ({COLUMNS})"
                 " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                 (rec.proposal_id, a.id, a.version, a.content_hash, rec.document, "file",
                  "", "", now, state, now, me))]
    return [("UPDATE agreement_proposals SET state = ?, changed_at = ?, changed_by = ?"
             " WHERE proposal_id = ? AND state = ?",
             (state, now, me, rec.proposal_id, ACTIVE))]


def supersede(older: AgreementRecord | None, me: str, now: str) -> list[Stmt]:
    """The version a newly activated one replaces (nothing when there is none)."""
    return [] if older is None else set_state(older, SUPERSEDED, me, now)
