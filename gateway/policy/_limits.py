"""Parse and check an agreement's ``limits``: the two required keys and the optional budgets.

Required: ``max_subjects_per_request`` and ``requests_per_minute``. Optional budget keys
(docs/policies.md "Budgets"): ``subjects_per_day``, ``queries_per_subject_per_day`` and
``queries_per_cohort_per_day``; each is an integer >= 1. A budget that could never apply to
what the agreement grants is an error rather than a silent no-op, and so is a daily volume that
one maximal request would already exceed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gateway.policy._model import BUDGET_KEYS, FieldGrant, JoinGrant, Limits

Problems = list[tuple[str, str]]

REQUIRED = ("max_subjects_per_request", "requests_per_minute")
ALLOWED = REQUIRED + BUDGET_KEYS


def positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def parse_limits(raw: Any, problems: Problems) -> Limits | None:
    """The agreement's :class:`Limits`, or ``None`` after appending to ``problems``."""
    if not isinstance(raw, dict):
        problems.append(("limits", f"want a mapping with {', '.join(REQUIRED)}"))
        return None
    before = len(problems)
    for key in sorted(set(raw) - set(ALLOWED), key=str):
        problems.append((f"limits.{key}", f"unknown key (allowed: {', '.join(ALLOWED)})"))
    for key in ALLOWED:
        if (key in REQUIRED or key in raw) and not positive_int(raw.get(key)):
            problems.append((f"limits.{key}", f"got {raw.get(key)!r}, want an integer >= 1"))
    return None if len(problems) > before else Limits(**{k: raw[k] for k in ALLOWED if k in raw})


def check_budgets(limits: Limits, grants: Sequence[FieldGrant], join: JoinGrant | None,
                  problems: Problems) -> None:
    """Budgets that cannot apply to what a (otherwise valid) agreement grants."""
    per_subject = [g for g in grants if g.transform != "aggregate"]
    cohorts = [g for g in grants
               if g.transform == "aggregate" and dict(g.params).get("cohort_by")]
    if limits.subjects_per_day is not None:
        if not per_subject and join is None:
            problems.append(("limits.subjects_per_day", "no effect: the agreement grants no "
                             "per-subject field and no join"))
        elif limits.subjects_per_day < limits.max_subjects_per_request:
            problems.append(("limits.subjects_per_day",
                             f"got {limits.subjects_per_day}, want >= max_subjects_per_request "
                             f"{limits.max_subjects_per_request}"))
    if limits.queries_per_subject_per_day is not None and not per_subject:
        problems.append(("limits.queries_per_subject_per_day", "no effect: the agreement "
                         "releases nothing per subject (aggregates and joins only)"))
    if limits.queries_per_cohort_per_day is not None and not cohorts:
        problems.append(("limits.queries_per_cohort_per_day", "no effect: no field is granted "
                         "as an aggregate with cohort_by"))
