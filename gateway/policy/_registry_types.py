"""The agreement registry's vocabulary: states, records, audit events and the audit sink."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import grpc

from gateway.auth import Principal
from gateway.errors import GatewayError
from gateway.policy._model import Agreement

PROPOSED, ACTIVE, REVOKED, SUPERSEDED = "proposed", "active", "revoked", "superseded"
STATES = (PROPOSED, ACTIVE, REVOKED, SUPERSEDED)
#: Distinct auditors, none of them the proposer, needed to activate a proposal.
APPROVALS_REQUIRED = 2
MAX_DOCUMENT = 64 * 1024


class AlreadyApproved(GatewayError):
    """This auditor's approval is already counted; it counts once."""

    code = grpc.StatusCode.ALREADY_EXISTS


@dataclass(frozen=True)
class AgreementRecord:
    """One version of one agreement and where it stands."""

    proposal_id: str
    agreement: Agreement
    document: str        # the YAML as proposed (or the file's text)
    state: str           # one of STATES
    origin: str          # "proposal" or "file"
    proposer: str = ""   # "org/subject"
    approvers: tuple[str, ...] = ()
    proposed_at: str = ""
    changed_at: str = ""


@dataclass(frozen=True)
class AdminEvent:
    """One lifecycle step to audit. ``step``: propose, approve, activate, revoke;
    ``decision``: allow, deny or error; ``agreements``: the one acted on first."""

    step: str
    decision: str
    actor: Principal
    role: str
    agreements: tuple[Agreement, ...]
    reason: str
    request_id: str


class AdminAudit(Protocol):
    """Appends one ``admin`` audit entry durably, or raises (the step then fails)."""

    def __call__(self, event: AdminEvent) -> Awaitable[None]: ...


def who(org: str, subject: str) -> str:
    """An actor as recorded in the tables: ``org/subject``."""
    return f"{org}/{subject}"


def utc_now() -> str:
    """The current UTC time as stored in the tables."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
