"""Parse one agreement document into an :class:`Agreement`, collecting every problem.

Each problem is a ``(rule, reason)`` pair; the rule is the key path that is wrong
(``purpose``, ``valid_until``, ``fields.card_number``, ``fields.name.keep_first``,
``limits.requests_per_minute``) or the unknown key itself. ``limits`` is parsed and checked
in ``_limits``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from connectors.sdk._schema import Schema
from connectors.sdk._transform_base import TransformParamError
from connectors.sdk._transforms import build_transform
from gateway.policy._limits import check_budgets, parse_limits, positive_int
from gateway.policy._model import (
    JOIN_MODES,
    JOIN_OUTPUTS,
    ROLES,
    Agreement,
    FieldGrant,
    JoinGrant,
    Purpose,
    freeze_params,
)

Problems = list[tuple[str, str]]

_REQUIRED = ("id", "version", "requester_org", "roles", "purpose", "partner", "legal_basis",
             "valid_from", "valid_until", "fields", "limits")
_OPTIONAL = ("description", "join")
_SLUG = re.compile(r"[a-z0-9][a-z0-9._-]{0,79}")
#: Stands in for the per-agreement key when params are checked at lint time.
_LINT_KEY = b"\x00" * 32


def _date(value: Any) -> date | None:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


def _text(data: Mapping[str, Any], key: str, problems: Problems, *,
          slug: bool = False) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        problems.append((key, f"got {value!r}, want a non-empty string"))
        return ""
    if slug and not _SLUG.fullmatch(value):
        problems.append((key, f"got {value!r}, want lowercase letters, digits, '.', '_', '-'"))
    return value.strip()


def _grants(raw: Any, schema: Schema | None, problems: Problems) -> tuple[FieldGrant, ...]:
    if not isinstance(raw, dict) or not raw:
        problems.append(("fields", "want a non-empty mapping field -> {transform: ...}"))
        return ()
    grants = []
    for name, spec in raw.items():
        rule = f"fields.{name}"
        if schema is None:  # the partner is already reported
            continue
        field_spec = schema.field(name) if isinstance(name, str) else None
        if field_spec is None:
            problems.append((rule, f"not in the {schema.partner} catalogue"))
            continue
        if not isinstance(spec, dict) or "transform" not in spec:
            problems.append((f"{rule}.transform", "missing: want {transform: name, ...params}"))
            continue
        params = {k: v for k, v in spec.items() if k != "transform"}
        if not all(isinstance(k, str) for k in params):
            problems.append((rule, "parameter names must be strings"))
            continue
        grant = FieldGrant(name, str(spec["transform"]), freeze_params(params))
        try:
            build_transform(spec["transform"], grant.param_dict, field_spec.type,
                            pseudonym_key=_LINT_KEY)
        except TransformParamError as exc:
            problems.append((f"{rule}.{exc.param}", exc.reason))
            continue
        except (TypeError, ValueError) as exc:
            problems.append((f"{rule}.transform", str(exc)))
            continue
        grants.append(grant)
    return tuple(grants)


def _join(raw: Any, schema: Schema | None, problems: Problems) -> JoinGrant | None:
    if not isinstance(raw, dict):
        problems.append(("join", "want a mapping with modes, outputs and optional where"))
        return None
    before = len(problems)
    for key in sorted(set(raw) - {"modes", "outputs", "where"}, key=str):
        problems.append((f"join.{key}", "unknown key (allowed: modes, outputs, where)"))
    lists = {}
    for key, allowed in (("modes", JOIN_MODES), ("outputs", JOIN_OUTPUTS)):
        value = raw.get(key)
        if (not isinstance(value, list) or not value or len(set(map(str, value))) != len(value)
                or not set(map(str, value)) <= allowed):
            problems.append((f"join.{key}", f"got {value!r}, want a non-empty list from "
                             f"{', '.join(sorted(allowed))}"))
        else:
            lists[key] = tuple(sorted(map(str, value)))
    where = raw.get("where", {})
    if not isinstance(where, dict):
        problems.append(("join.where", "want a mapping field -> value"))
        where = {}
    for name, value in where.items():
        if schema is not None and schema.field(str(name)) is None:
            problems.append((f"join.where.{name}", f"not in the {schema.partner} catalogue"))
        if not isinstance(value, (str, int, bool)):
            problems.append((f"join.where.{name}", f"got {value!r}, want a string, int or bool"))
    if len(problems) > before:
        return None
    return JoinGrant(lists["modes"], lists["outputs"], tuple(sorted(where.items())))


def parse_agreement(data: Any, source: str, purposes: Mapping[str, Purpose],
                    catalogues: Mapping[str, Schema], problems: Problems) -> Agreement | None:
    """Build the agreement in ``data`` or return ``None`` after appending to ``problems``."""
    if not isinstance(data, dict):
        problems.append(("document", "want a mapping of agreement keys"))
        return None
    before = len(problems)
    allowed = _REQUIRED + _OPTIONAL
    for key in data:
        if key not in allowed:
            problems.append((str(key), f"unknown key (allowed: {', '.join(sorted(allowed))})"))
    for key in _REQUIRED:
        if key not in data:
            problems.append((key, "required key missing"))
    agreement_id = _text(data, "id", problems, slug=True) if "id" in data else ""
    version = data.get("version")
    if "version" in data and not positive_int(version):
        problems.append(("version", f"got {version!r}, want an integer >= 1"))
    org = _text(data, "requester_org", problems, slug=True) if "requester_org" in data else ""
    roles = data.get("roles")
    if "roles" in data and (not isinstance(roles, list) or not roles
                            or len(set(map(str, roles))) != len(roles)
                            or not set(map(str, roles)) <= ROLES):
        problems.append(("roles", f"got {roles!r}, want a non-empty list of distinct roles "
                         f"from: {', '.join(sorted(ROLES))}"))
    purpose = data.get("purpose")
    if "purpose" in data and (not isinstance(purpose, str) or purpose not in purposes):
        problems.append(("purpose", f"got {purpose!r}, want one of the catalogue: "
                         f"{', '.join(sorted(purposes)) or '(empty)'}"))
    partner = data.get("partner")
    schema = catalogues.get(partner) if isinstance(partner, str) else None
    if "partner" in data and schema is None:
        problems.append(("partner", f"got {partner!r}, want one of: "
                         f"{', '.join(sorted(catalogues))}"))
    legal_basis = _text(data, "legal_basis", problems) if "legal_basis" in data else ""
    dates = {k: _date(data.get(k)) for k in ("valid_from", "valid_until") if k in data}
    for key, value in dates.items():
        if value is None:
            problems.append((key, f"got {data[key]!r}, want a YYYY-MM-DD date"))
    start, end = dates.get("valid_from"), dates.get("valid_until")
    if start and end and start >= end:
        problems.append(("valid_until", f"got {end}, want a date after valid_from {start}"))
    grants = _grants(data["fields"], schema, problems) if "fields" in data else ()
    limits = parse_limits(data["limits"], problems) if "limits" in data else None
    join = _join(data["join"], schema, problems) if "join" in data else None
    for grant in grants:
        for name in dict(grant.params).get("cohort_by", ()) if grant.transform == "aggregate" \
                else ():
            if schema is not None and schema.field(name) is None:
                problems.append((f"fields.{grant.field}.cohort_by",
                                 f"{name!r} is not in the {schema.partner} catalogue"))
    description = data.get("description", "")
    if not isinstance(description, str):
        problems.append(("description", "want a string"))
    if len(problems) == before and limits is not None:
        check_budgets(limits, grants, join, problems)
    if len(problems) > before or limits is None or start is None or end is None:
        return None
    return Agreement(
        id=agreement_id, version=data["version"], requester_org=org,
        roles=tuple(map(str, data["roles"])), purpose=data["purpose"],
        partner=data["partner"], legal_basis=legal_basis, valid_from=start,
        valid_until=end, fields=grants, limits=limits, description=description.strip(),
        join=join, source=source)
