"""The agreement registry's snapshot: built from the stored rows over the file baseline.

The agreement files under ``policies/`` are the baseline: a file agreement is active unless
the registry holds a row for it (then the row's state rules) or a higher version of its id
has been activated. A file whose id and version match a row with another content hash stops
the start (bump the version). A proposal is validated exactly as the loader validates a
policy file. A :class:`Snapshot` is immutable; the registry swaps in a new one after every
change, and checks each step against the one it holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import yaml

from gateway.errors import (
    ConfigError,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
)
from gateway.policy._decide import PolicySet
from gateway.policy._loader import PolicyProblem, _cross_check, _StrictLoader
from gateway.policy._model import Agreement
from gateway.policy._parse import parse_agreement
from gateway.policy._registry_types import (
    ACTIVE,
    MAX_DOCUMENT,
    PROPOSED,
    SUPERSEDED,
    AgreementRecord,
    who,
)


@dataclass(frozen=True)
class Snapshot:
    """Every known version by proposal id, and the active agreements as a policy set."""

    by_id: Mapping[str, AgreementRecord]
    current: PolicySet

    def records(self, agreement_id: str = "") -> tuple[AgreementRecord, ...]:
        """Every known version (all ids, or one), by id and version."""
        return tuple(sorted((r for r in self.by_id.values()
                             if not agreement_id or r.agreement.id == agreement_id),
                            key=lambda r: (r.agreement.id, r.agreement.version)))

    def record(self, proposal_id: str) -> AgreementRecord:
        try:
            return self.by_id[proposal_id]
        except KeyError:
            raise NotFound(f"proposal_id: got {proposal_id!r}, want a known proposal") from None

    def active(self, agreement_id: str) -> AgreementRecord:
        """The active version of ``agreement_id``; NotFound if it has none."""
        for r in self.by_id.values():
            if r.agreement.id == agreement_id and r.state == ACTIVE:
                return r
        known = sorted({r.state for r in self.records(agreement_id)})
        why = f"its versions are {', '.join(known)}" if known else "it is unknown"
        raise NotFound(f"agreement_id: {agreement_id!r} has no active version ({why})")

    def check_version(self, a: Agreement) -> None:
        known = self.records(a.id)
        if known and a.version <= known[-1].agreement.version:
            top = known[-1]
            raise InvalidArgument(FieldViolation("version", (
                f"got {a.version}, want above {top.agreement.version}: {top.agreement.label} "
                f"is already {top.state} ({top.proposal_id}); a change must bump the version")))

    def check_overlap(self, a: Agreement) -> None:
        others = [r.agreement for r in self.by_id.values()
                  if r.state == ACTIVE and r.agreement.id != a.id]
        problems: list[PolicyProblem] = []
        _cross_check([*others, a], problems)
        if problems:
            raise InvalidArgument([FieldViolation(p.rule, p.reason) for p in problems])

    def check_activation(self, a: Agreement) -> AgreementRecord | None:
        """The active version this one replaces; refuses a downgrade or an overlap."""
        try:
            older = self.active(a.id)
        except NotFound:
            older = None
        top = max((r.agreement.version for r in self.records(a.id) if r.state != PROPOSED),
                  default=0)
        if a.version <= top:
            raise FailedPrecondition(f"version: {a.label} is not above v{top} of {a.id}, "
                                     "which was already in force; propose a higher version")
        try:
            self.check_overlap(a)
        except InvalidArgument as err:
            raise FailedPrecondition(f"overlap: {err.message}") from None
        return older


def parse_document(document: str, baseline: PolicySet, source: str = "proposal") -> Agreement:
    """Validate one agreement document against the baseline's purposes and catalogues."""
    if len(document.encode("utf-8")) > MAX_DOCUMENT:
        raise InvalidArgument(FieldViolation("agreement_yaml",
                                             f"want at most {MAX_DOCUMENT} bytes"))
    try:
        data = yaml.load(document, Loader=_StrictLoader)
    except yaml.YAMLError as exc:
        raise InvalidArgument(FieldViolation("yaml", " ".join(str(exc).split()))) from None
    problems: list[tuple[str, str]] = []
    agreement = parse_agreement(data, source, baseline.purposes, baseline.catalogues, problems)
    if problems or agreement is None:
        raise InvalidArgument([FieldViolation(rule, reason) for rule, reason in problems]
                              or FieldViolation("document", "not an agreement"))
    return agreement


def build_snapshot(rows: list[tuple[Any, ...]], approvals: list[tuple[Any, ...]],
                   baseline: PolicySet, documents: Mapping[str, str]) -> Snapshot:
    """The snapshot for the rows read with ``_registry_sql.READ_ALL`` over the ``baseline``."""
    approvers: dict[str, list[str]] = {}
    for pid, org, subject in approvals:
        approvers.setdefault(str(pid), []).append(who(str(org), str(subject)))
    records: dict[str, AgreementRecord] = {}
    for (pid, aid, version, digest, document, origin, p_org, p_sub, at, state, changed,
         _by) in rows:
        agreement = parse_document(str(document), baseline, source=f"registry:{pid}")
        if (agreement.id, agreement.version, agreement.content_hash) != (aid, version, digest):
            raise ConfigError(f"agreement registry row {pid}: stored {aid} v{version} "
                              f"{digest} does not match its document")
        records[str(pid)] = AgreementRecord(
            str(pid), agreement, str(document), str(state), str(origin),
            who(str(p_org), str(p_sub)) if p_org else "",
            tuple(approvers.get(str(pid), ())), str(at), str(changed))
    by_version = {(r.agreement.id, r.agreement.version): r for r in records.values()}
    for a in baseline.agreements:
        row = by_version.get((a.id, a.version))
        if row is not None:
            if row.agreement.content_hash != a.content_hash:
                raise ConfigError(
                    f"{a.source}: version: {a.label} in the file differs from {a.label} in "
                    f"the agreement registry ({row.proposal_id}, {row.agreement.content_hash})"
                    "; a changed agreement needs a new version and approval")
            continue
        newer = any(r.agreement.id == a.id and r.agreement.version > a.version
                    and r.state != PROPOSED for r in records.values())
        pid = f"file:{a.id}@v{a.version}"
        records[pid] = AgreementRecord(pid, a, documents[a.content_hash],
                                       SUPERSEDED if newer else ACTIVE, "file")
    best: dict[str, AgreementRecord] = {}
    for r in records.values():  # at most one active version per id: the highest
        if r.state == ACTIVE:
            other = best.get(r.agreement.id)
            if other is None or r.agreement.version > other.agreement.version:
                best[r.agreement.id] = r
    by_id = {pid: r if r.state != ACTIVE or best[r.agreement.id] is r
             else replace(r, state=SUPERSEDED) for pid, r in records.items()}
    active = sorted((r for r in by_id.values() if r.state == ACTIVE),
                    key=lambda r: (r.agreement.id, r.agreement.version))
    return Snapshot(by_id, PolicySet(baseline.purposes, (r.agreement for r in active),
                                     baseline.catalogues))
