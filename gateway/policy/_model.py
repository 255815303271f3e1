"""The agreement model: frozen objects parsed once from the policy files.

An agreement's ``content_hash`` is the hex SHA-256 of its canonical JSON: the normalised
agreement with sorted keys, ISO dates, lists for sequences, no insignificant whitespace and
UTF-8 text. It does not depend on the file path or the YAML layout, so the gateway and each
connector compute the same hash from their own copies; any change of meaning changes it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from typing import Any

#: The roles a principal may hold (``gateway.auth``); an agreement grants a subset.
ROLES = frozenset({"requester", "auditor", "policy-admin", "integrator"})

#: A transform's parameters as sorted ``(name, value)`` pairs, lists frozen into tuples.
Params = tuple[tuple[str, Any], ...]


def freeze_params(params: Mapping[str, Any]) -> Params:
    """Normalise transform parameters: sorted pairs, lists as tuples, dates as ISO strings,
    integral floats as ints (``2000.0`` and ``2000`` mean the same band)."""

    def freeze(value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return tuple(freeze(v) for v in value)
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value

    return tuple(sorted((str(k), freeze(v)) for k, v in params.items()))


def _jsonable(value: Any) -> Any:
    return [_jsonable(v) for v in value] if isinstance(value, tuple) else value


@dataclass(frozen=True)
class Purpose:
    """One entry of the purpose catalogue (``policies/purposes.yaml``)."""

    name: str
    description: str
    legal_basis: str


@dataclass(frozen=True)
class FieldGrant:
    """One granted field and the transform it must pass through before it leaves."""

    field: str
    transform: str
    params: Params = ()

    @property
    def param_dict(self) -> dict[str, Any]:
        """The parameters as a plain dict (lists restored), e.g. for ``build_transform``."""
        return dict(self._param_dict)

    @cached_property
    def _param_dict(self) -> dict[str, Any]:
        return {k: _jsonable(v) for k, v in self.params}

    @cached_property
    def params_json(self) -> str:
        """The parameters as canonical JSON (what a ReleaseSpec carries)."""
        return json.dumps(self._param_dict, sort_keys=True, separators=(",", ":"))

    def describe(self) -> str:
        """Human wording: ``predicate contribution_months >= 12``, ``mask keep_first=1``."""
        return self._description

    @cached_property
    def _description(self) -> str:
        p = dict(self.params)
        if self.transform == "predicate" and set(p) == {"op", "value"}:
            return f"predicate {self.field} {p['op']} {json.dumps(_jsonable(p['value']))}"
        args = " ".join(f"{k}={json.dumps(_jsonable(v))}" for k, v in self.params)
        return f"{self.transform} {args}".rstrip()


JOIN_MODES = frozenset({"ecdh-psi", "keyed-hash"})
JOIN_OUTPUTS = frozenset({"membership", "cardinality", "intersection-sum"})


@dataclass(frozen=True)
class JoinGrant:
    """A private join against the partner's set of people: which protocols, which outputs,
    and which of its people form the set (``where``: equality on catalogue fields)."""

    modes: tuple[str, ...]
    outputs: tuple[str, ...]
    where: tuple[tuple[str, Any], ...] = ()

    def canonical(self) -> dict[str, Any]:
        return {"modes": sorted(self.modes), "outputs": sorted(self.outputs),
                "where": {k: v for k, v in self.where}}


#: The optional budget keys of ``limits`` (docs/policies.md "Budgets"), in canonical order.
BUDGET_KEYS = ("subjects_per_day", "queries_per_subject_per_day", "queries_per_cohort_per_day")


@dataclass(frozen=True)
class Limits:
    """Volume and rate limits of one agreement; the gateway enforces all but the first per
    request through its budget store (``gateway.budgets``). ``None``: no such budget."""

    max_subjects_per_request: int
    requests_per_minute: int
    subjects_per_day: int | None = None
    queries_per_subject_per_day: int | None = None
    queries_per_cohort_per_day: int | None = None

    def canonical(self) -> dict[str, int]:
        """The limits as hashed: budget keys only when set, so agreements written before
        budgets existed keep their content hash."""
        out = {"max_subjects_per_request": self.max_subjects_per_request,
               "requests_per_minute": self.requests_per_minute}
        for key in BUDGET_KEYS:
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


@dataclass(frozen=True)
class Agreement:
    """One approved sharing agreement: who may get which fields, how, for what, and when.

    ``valid_from`` and ``valid_until`` are both inclusive. ``fields`` is sorted by field
    name. ``source`` (the file it came from) is not part of the hash or of equality.
    """

    id: str
    version: int
    requester_org: str
    roles: tuple[str, ...]
    purpose: str
    partner: str
    legal_basis: str
    valid_from: date
    valid_until: date
    fields: tuple[FieldGrant, ...]
    limits: Limits
    description: str = ""
    join: JoinGrant | None = None
    source: str = field(default="", compare=False)
    content_hash: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "roles", tuple(sorted(set(self.roles))))
        object.__setattr__(self, "fields", tuple(sorted(self.fields, key=lambda g: g.field)))
        digest = hashlib.sha256(self.canonical_json()).hexdigest()
        object.__setattr__(self, "content_hash", digest)

    def canonical(self) -> dict[str, Any]:
        """The normalised agreement as plain JSON data (what the hash covers)."""
        return {
            "id": self.id, "version": self.version, "requester_org": self.requester_org,
            "roles": list(self.roles), "purpose": self.purpose, "partner": self.partner,
            "legal_basis": self.legal_basis, "description": self.description,
            "valid_from": self.valid_from.isoformat(),
            "valid_until": self.valid_until.isoformat(),
            "fields": {g.field: {"transform": g.transform, **g.param_dict} for g in self.fields},
            "limits": self.limits.canonical(),
            **({"join": self.join.canonical()} if self.join else {}),
        }

    def canonical_json(self) -> bytes:
        return json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False, allow_nan=False).encode("utf-8")

    def grant(self, field_name: str) -> FieldGrant | None:
        for g in self.fields:
            if g.field == field_name:
                return g
        return None

    def active(self, now_date: date) -> bool:
        """Whether the agreement is in force on ``now_date`` (both bounds inclusive)."""
        return self.valid_from <= now_date <= self.valid_until

    @property
    def label(self) -> str:
        """``id vN``, as used in decision reasons and the audit entry."""
        return f"{self.id} v{self.version}"
