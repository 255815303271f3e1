"""The policy decision: deny by default, all or nothing, with a reason for every field.

A request is allowed only if, for every partner it names, exactly one agreement for
(org, one of the principal's roles, purpose, partner) is in force today, it grants every
requested field, and the subject count is within the agreement's limit. Anything else
refuses the whole request; nothing is ever partially released. Rate limits
and budgets (``limits.requests_per_minute``, ``subjects_per_day``, ...) need state and are
enforced by the gateway (``gateway.budgets``), not here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from types import MappingProxyType
from typing import Any

from connectors.sdk._schema import Schema
from connectors.sdk._transforms import TRANSFORMS
from gateway.errors import NotFound, PermissionDenied
from gateway.policy._model import Agreement, FieldGrant, Purpose, freeze_params


@dataclass(frozen=True)
class PartnerDecision:
    """The decision for one partner. ``granted`` lists what the agreement would release;
    ``refused`` holds ``(field, reason)``; ``field_reasons`` explains every requested field."""

    partner: str
    agreement: Agreement | None
    granted: tuple[FieldGrant, ...]
    refused: tuple[tuple[str, str], ...]
    reason: str
    allowed: bool = False
    field_reasons: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class RequestDecision:
    """The decision for a whole request: ``allowed`` only if every partner is allowed."""

    allowed: bool
    reason: str
    partners: tuple[PartnerDecision, ...]

    @property
    def refused_fields(self) -> tuple[str, ...]:
        """Refused fields as ``partner.field``, in request order."""
        return tuple(f"{p.partner}.{f}" for p in self.partners for f, _ in p.refused)

    def raise_if_denied(self) -> None:
        """Raise :class:`PermissionDenied` listing the refused fields unless allowed."""
        if not self.allowed:
            raise PermissionDenied(self.reason, refused_fields=list(self.refused_fields),
                                   reason=self.reason)


def choose_agreement(candidates: list[Agreement], org: str, roles: frozenset[str], purpose: str,
                     partner: str, today: date) -> tuple[Agreement | None, str]:
    """The one agreement in force for the principal, or ``None`` and why not."""
    if not candidates:
        return None, f"no agreement for purpose {purpose} between {org} and {partner}"
    by_role = [a for a in candidates if roles & set(a.roles)]
    if not by_role:
        granted = sorted({r for a in candidates for r in a.roles})
        return None, (f"role not permitted: {partner} data for {purpose} is granted to "
                      f"{', '.join(granted)}; the principal has "
                      f"{', '.join(sorted(roles)) or 'none'}")
    active = [a for a in by_role if a.active(today)]
    if len(active) > 1:
        labels = ", ".join(sorted(a.label for a in active))
        return None, f"ambiguous: {labels} all apply to the principal's roles; act in one role"
    if active:
        return active[0], ""
    future = sorted((a for a in by_role if a.valid_from > today), key=lambda a: a.valid_from)
    if future:
        first = future[0]
        return None, f"agreement not yet valid: {first.label} takes effect {first.valid_from}"
    past = max(by_role, key=lambda a: a.valid_until)
    return None, f"agreement expired: {past.label} ended {past.valid_until}"


class PolicySet:
    """The loaded purposes and agreements, and the decisions made from them."""

    def __init__(self, purposes: Mapping[str, Purpose], agreements: Iterable[Agreement],
                 catalogues: Mapping[str, Schema]) -> None:
        self._purposes = MappingProxyType(dict(purposes))
        self._agreements = tuple(agreements)
        self._catalogues = MappingProxyType(dict(catalogues))

    @property
    def purposes(self) -> Mapping[str, Purpose]:
        return self._purposes

    @property
    def agreements(self) -> tuple[Agreement, ...]:
        return self._agreements

    @property
    def catalogues(self) -> Mapping[str, Schema]:
        return self._catalogues

    def agreement(self, agreement_id: str) -> Agreement:
        """The agreement with this id; :class:`NotFound` if there is none."""
        for a in self._agreements:
            if a.id == agreement_id:
                return a
        raise NotFound(f"agreement: got {agreement_id!r}, want a loaded agreement id")

    def for_partner(self, partner: str) -> PolicySet:
        """Only ``partner``'s agreements: the copy its connector checks specs against."""
        return PolicySet(self._purposes, (a for a in self._agreements if a.partner == partner),
                         {k: v for k, v in self._catalogues.items() if k == partner})

    def _decide_partner(self, org: str, roles: frozenset[str], purpose: str, partner: str,
                        fields: Sequence[str], subject_count: int,
                        today: date) -> PartnerDecision:
        schema = self._catalogues.get(partner)
        if schema is None:
            return PartnerDecision(partner, None, (), tuple((f, "unknown partner") for f in fields),
                                   f"unknown partner {partner!r}")
        candidates = [a for a in self._agreements if (a.requester_org, a.purpose, a.partner)
                      == (org, purpose, partner)]
        agreement, why = choose_agreement(candidates, org, roles, purpose, partner, today)
        granted: list[FieldGrant] = []
        refused: list[tuple[str, str]] = []
        notes: list[tuple[str, str]] = []
        for f in fields:
            grant = agreement.grant(f) if agreement else None
            if f not in schema.names:
                note = f"not in the {partner} catalogue"
            elif agreement is None:
                note = why
            elif grant is None:
                note = f"not granted by {agreement.label}"
            elif not TRANSFORMS[grant.transform].releasable:
                note = (f"granted by {agreement.label} only as {grant.transform} "
                        "(usable in compute or joins, never released in a query)")
            else:
                granted.append(grant)
                notes.append((f, f"granted as {grant.describe()} by {agreement.label}"))
                continue
            refused.append((f, note))
            notes.append((f, note))
        if agreement is None:
            reason = why
        elif refused:
            reason = "fields not granted: " + ", ".join(
                f"{partner}.{f} ({note})" for f, note in refused)
        elif not fields:
            reason = f"no fields requested from {partner}"
        elif subject_count > agreement.limits.max_subjects_per_request:
            reason = (f"subject_count {subject_count} exceeds limits.max_subjects_per_request "
                      f"{agreement.limits.max_subjects_per_request} of {agreement.label}")
        else:
            return PartnerDecision(partner, agreement, tuple(granted), (),
                                   f"allowed by {agreement.label}", True, tuple(notes))
        return PartnerDecision(partner, agreement, tuple(granted), tuple(refused), reason,
                               False, tuple(notes))

    def decide(self, *, org: str, roles: Iterable[str], purpose: str,
               selections: Mapping[str, Sequence[str]], subject_count: int,
               today: date) -> RequestDecision:
        """Decide a request (or an ``Explain`` dry run): all partners allowed, or nothing."""
        if subject_count < 0:
            raise ValueError(f"subject_count: got {subject_count}, want >= 0")
        role_set = frozenset(roles)
        partners = tuple(
            self._decide_partner(org, role_set, purpose, partner,
                                 list(dict.fromkeys(fields)), subject_count, today)
            for partner, fields in selections.items())
        if not partners:
            return RequestDecision(False, "request refused: no fields requested", ())
        if all(p.allowed for p in partners):
            return RequestDecision(True, "; ".join(p.reason for p in partners), partners)
        reasons = [p.reason for p in partners if not p.allowed]
        if purpose not in self._purposes:
            reasons.insert(0, f"unknown purpose {purpose!r}")
        return RequestDecision(False, "request refused: " + "; ".join(reasons), partners)


def check_spec_against(agreement: Agreement, *, org: str, purpose: str,
                       fields: Mapping[str, tuple[str, Any]], today: date,
                       content_hash: str | None = None,
                       subject_count: int | None = None) -> list[str]:
    """Problems with a release spec measured against a connector's own agreement copy.

    Empty when the spec is within the agreement: same org and purpose, agreement in force,
    each field granted with exactly the same transform and parameters. ``content_hash`` and
    ``subject_count``, when given, must match the copy and respect its limit.
    """
    problems = []
    if org != agreement.requester_org:
        problems.append(f"requester_org: got {org!r}, want {agreement.requester_org!r}")
    if purpose != agreement.purpose:
        problems.append(f"purpose: got {purpose!r}, want {agreement.purpose!r}")
    if not agreement.active(today):
        problems.append(f"{agreement.label} is not in force on {today} (valid "
                        f"{agreement.valid_from} to {agreement.valid_until})")
    if content_hash is not None and content_hash != agreement.content_hash:
        problems.append(f"content_hash: got {content_hash}, want {agreement.content_hash}")
    limit = agreement.limits.max_subjects_per_request
    if subject_count is not None and subject_count > limit:
        problems.append(f"subject_count: got {subject_count}, want at most {limit} "
                        "(limits.max_subjects_per_request)")
    for name, (transform, params) in fields.items():
        grant = agreement.grant(name)
        frozen = freeze_params(dict(params))
        if grant is None:
            problems.append(f"fields.{name}: not granted by {agreement.label}")
        elif transform != grant.transform:
            problems.append(f"fields.{name}.transform: got {transform!r}, want {grant.transform!r}")
        elif frozen != grant.params:
            problems.append(f"fields.{name}.params: got {dict(frozen)}, want {dict(grant.params)}")
    return problems
