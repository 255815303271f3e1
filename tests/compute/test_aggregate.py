"""Cohort aggregates end to end: sum, mean and count equal the plaintext on the raw rows."""

from __future__ import annotations

import pytest
from pgw_compute_harness import RawData, Stack


def cohort(raw: RawData, attribute: str, value: str) -> list[float]:
    return [float(r["contribution_base"]) for r in raw.rows["social-security"].values()
            if r[attribute] == value and r["contribution_base"] is not None]


@pytest.mark.parametrize(("attribute", "value"), [("district_code", "320402"),
                                                  ("district_code", "320481")])
def test_sum_mean_count_match_plaintext(stack: Stack, raw: RawData, attribute: str,
                                        value: str) -> None:
    values = cohort(raw, attribute, value)
    assert len(values) >= 10
    got = {op: stack.aggregate("social-security", "contribution_base", op, attribute, value)
           for op in ("sum", "mean", "count")}
    assert abs(got["sum"].value - sum(values)) < 1e-2
    assert abs(got["mean"].value - sum(values) / len(values)) < 1e-2
    assert abs(got["count"].value - len(values)) < 1e-2
    assert {r.cohort_count for r in got.values()} == {len(values)}  # the agreement grants count


def test_employer_cohort(stack: Stack, raw: RawData) -> None:
    counts: dict[str, int] = {}
    for r in raw.rows["social-security"].values():
        counts[r["employer_code"]] = counts.get(r["employer_code"], 0) + 1
    employer = max(counts, key=lambda e: counts[e])
    values = cohort(raw, "employer_code", employer)
    got = stack.aggregate("social-security", "contribution_base", "sum", "employer_code",
                          employer)
    assert abs(got.value - sum(values)) < 1e-2


def test_allowed_aggregate_audited(stack: Stack) -> None:
    result = stack.aggregate("social-security", "contribution_base", "mean", "district_code",
                             "320402")
    entry = next(e for e in stack.audit() if e.request_id == result.request_id)
    assert (entry.kind, entry.decision, entry.subject_count) == ("compute", "allow", 0)
    assert entry.released == (("social-security", "contribution_base", "aggregate"),)
    assert "mean" in entry.reason and "district_code" in entry.reason
