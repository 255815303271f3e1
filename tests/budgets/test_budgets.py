"""What a request costs (``Budgets``): rate, volume, per-subject and per-cohort counters, the
refusal a requester sees (QuotaFailure, RetryInfo, no ids), and hashed counter keys."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from google.rpc import error_details_pb2

from gateway.budgets import (
    BudgetExhausted,
    Budgets,
    BudgetUnavailable,
    SqliteBudgetStore,
    audit_decision,
    budget_secret,
)
from gateway.policy import Agreement, load_policies
from gateway.workdir import shipped_policies

T = TypeVar("T")
NOW = datetime(2026, 7, 1, 23, 59, 0, tzinfo=UTC).timestamp()  # one minute before midnight
ORG = "hpf-changzhou"
IDS = ["110101199003077777", "320402198507071234", "320481197912125678"]
SECRET = b"s" * 32


def agreement(aid: str, **limits: Any) -> Agreement:
    a = load_policies(shipped_policies()).agreement(aid)
    return dataclasses.replace(a, limits=dataclasses.replace(a.limits, **limits))


def run(path: Path, body: Callable[[Budgets], Awaitable[T]], now: float = NOW) -> T:
    async def go() -> T:
        budgets = Budgets(SqliteBudgetStore(path), SECRET, clock=lambda: now)
        try:
            return await body(budgets)
        finally:
            await budgets.aclose()
    return asyncio.run(go())


def refusal(path: Path, body: Callable[[Budgets], Awaitable[Any]]) -> BudgetExhausted:
    with pytest.raises(BudgetExhausted) as info:
        run(path, body)
    return info.value


def test_per_subject_refusal_names_the_index_the_limit_and_the_retry(tmp_path: Path) -> None:
    ss = agreement("hpf-loan-ss", queries_per_subject_per_day=2)
    db = tmp_path / "b.db"
    run(db, lambda b: b.request(ORG, [ss], subjects=IDS[1:2]))
    run(db, lambda b: b.request(ORG, [ss], subjects=IDS[1:2]))
    err = refusal(db, lambda b: b.request(ORG, [ss], subjects=IDS[:2]))
    assert err.code.name == "RESOURCE_EXHAUSTED"
    quota, retry = err.details()
    assert isinstance(quota, error_details_pb2.QuotaFailure)
    assert [(v.subject, v.description) for v in quota.violations] == [
        ("subject#1", "limits.queries_per_subject_per_day = 2")]
    assert isinstance(retry, error_details_pb2.RetryInfo) and retry.retry_delay.seconds == 60
    assert err.message == ("budget exhausted: limits.queries_per_subject_per_day = 2 for "
                           "subject#1 under hpf-loan-ss v1; nothing was released, retry in 60 s")
    assert all(i not in err.message + err.reason for i in IDS)
    assert audit_decision(err) == "deny"
    # the refused request charged nothing: subject #0 has its whole budget left
    run(db, lambda b: b.request(ORG, [ss], subjects=IDS[:1]))
    run(db, lambda b: b.request(ORG, [ss], subjects=IDS[:1]))


def test_the_per_subject_counter_is_shared_across_agreements(tmp_path: Path) -> None:
    """Bisection across agreements spends one budget per (org, person): each request counts
    once per agreement that sets the key, against the strictest limit among them."""
    ss = agreement("hpf-loan-ss", queries_per_subject_per_day=3)
    re_ = agreement("hpf-loan-re", queries_per_subject_per_day=5)
    db = tmp_path / "b.db"
    run(db, lambda b: b.request(ORG, [ss, re_], subjects=IDS[:1]))   # 2 of 3
    err = refusal(db, lambda b: b.request(ORG, [ss, re_], subjects=IDS[:1]))
    assert (err.charge.scope, err.charge.limit) == ("hpf-loan-ss v1", 3)
    run(db, lambda b: b.request(ORG, [re_], subjects=IDS[:1]))       # 3 of 5
    run(db, lambda b: b.request(ORG, [re_], subjects=IDS[:1]))       # 4 of 5
    assert refusal(db, lambda b: b.request(ORG, [ss], subjects=IDS[:1])).charge.limit == 3
    # another org's counter for the same person is its own
    run(db, lambda b: b.request("housing-bureau", [ss], subjects=IDS[:1]))


def test_volume_counts_subjects_or_the_blinded_set_size(tmp_path: Path) -> None:
    edu = agreement("hpf-loan-edu", subjects_per_day=4)
    db = tmp_path / "b.db"
    run(db, lambda b: b.request(ORG, [edu], subjects=IDS))
    err = refusal(db, lambda b: b.request(ORG, [edu], count=2))
    assert (err.charge.subject, err.charge.limit_name) == ("agreement:hpf-loan-edu",
                                                           "limits.subjects_per_day")
    run(db, lambda b: b.request(ORG, [edu], count=1))


def test_rate_is_per_agreement_per_minute(tmp_path: Path) -> None:
    bank = agreement("hpf-loan-bank", requests_per_minute=2)
    db = tmp_path / "b.db"
    for _ in range(2):
        run(db, lambda b: b.request(ORG, [bank], subjects=IDS[:1]))
    err = refusal(db, lambda b: b.request(ORG, [bank], subjects=IDS[:1]))
    assert (err.charge.subject, err.details()[0].violations[0].description) == (
        "agreement:hpf-loan-bank", "limits.requests_per_minute = 2")
    run(db, lambda b: b.request(ORG, [bank], subjects=IDS[:1]), now=NOW + 60)


def test_cohort_counter_per_cohort_value(tmp_path: Path) -> None:
    stats = agreement("hpf-stats-ss", queries_per_cohort_per_day=2)
    db = tmp_path / "b.db"
    for _ in range(2):
        run(db, lambda b: b.cohort(ORG, stats, "district_code", "320402"))
    err = refusal(db, lambda b: b.cohort(ORG, stats, "district_code", "320402"))
    assert err.charge.subject == "cohort:district_code"
    assert "320402" not in err.message + err.reason
    run(db, lambda b: b.cohort(ORG, stats, "district_code", "320481"))  # another cohort


def test_the_store_holds_keyed_hashes_not_ids(tmp_path: Path) -> None:
    ss, stats = agreement("hpf-loan-ss"), agreement("hpf-stats-ss")
    db = tmp_path / "b.db"
    run(db, lambda b: b.request(ORG, [ss], subjects=IDS))
    run(db, lambda b: b.cohort(ORG, stats, "employer_code", "91320400MA1XXXXX0"))
    keys = [k for (k,) in sqlite3.connect(db).execute("SELECT key FROM budget_counters")]
    assert sorted(k.split(":")[0] for k in keys) == ["cohort", "rate", "rate", "subject",
                                                     "subject", "subject", "volume"]
    text = " ".join(keys)
    assert all(i not in text for i in IDS) and "91320400" not in text and ORG not in text
    assert budget_secret(b"k" * 32) != budget_secret(b"j" * 32)
    assert budget_secret(b"k" * 32) == budget_secret(b"k" * 32) != b"k" * 32


def test_a_closed_store_fails_closed(tmp_path: Path) -> None:
    async def go() -> None:
        budgets = Budgets(SqliteBudgetStore(tmp_path / "b.db"), SECRET)
        await budgets.aclose()
        await budgets.request(ORG, [agreement("hpf-loan-edu")], subjects=IDS[:1])

    with pytest.raises(BudgetUnavailable) as info:
        asyncio.run(go())
    assert audit_decision(info.value) == "error"
    with pytest.raises(ValueError, match="want >= 16"):
        Budgets(SqliteBudgetStore(":memory:"), b"short")
