"""The budget store contract, on every backend (SQLite, PostgreSQL, Redis): exact limits,
all-or-nothing spends, the first violated charge in the caller's order, fixed windows with an
injected clock, concurrent spends from several connections, and failing closed."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import pytest

from gateway.budgets import (
    DAY,
    MINUTE,
    BudgetStore,
    BudgetUnavailable,
    Charge,
    open_budget_store,
)

T = TypeVar("T")
#: 2026-07-01 12:00:30 UTC: half a minute into a minute window, mid-way through a UTC day.
T0 = datetime(2026, 7, 1, 12, 0, 30, tzinfo=UTC).timestamp()


def with_store(dsn: str, body: Callable[[BudgetStore], Awaitable[T]]) -> T:
    async def go() -> T:
        store = await open_budget_store(dsn)
        try:
            return await body(store)
        finally:
            await store.aclose()
    return asyncio.run(go())


def test_spends_up_to_the_limit_exactly(store_dsn: str, ns: str) -> None:
    c = Charge(f"{ns}:a", MINUTE, 3)

    async def body(store: BudgetStore) -> list[Charge | None]:
        return [await store.spend([c], T0) for _ in range(5)]

    assert with_store(store_dsn, body) == [None, None, None, c, c]


def test_all_or_nothing(store_dsn: str, ns: str) -> None:
    """A refused spend charges none of its counters, not even those within their limits."""
    a, b = Charge(f"{ns}:a", DAY, 5), Charge(f"{ns}:b", DAY, 2)

    async def body(store: BudgetStore) -> None:
        assert await store.spend([b, b], T0) is None             # b: 2 of 2
        refused = await store.spend([a, b], T0)
        assert refused is not None and refused.key == b.key
        # a was not charged by the refused spend: all 5 of its uses are still there
        assert await store.spend([Charge(a.key, DAY, 5, cost=5)], T0) is None
        assert await store.spend([a], T0) == a

    with_store(store_dsn, body)


def test_first_violated_charge_in_the_callers_order(store_dsn: str, ns: str) -> None:
    """PostgreSQL locks rows in key order; the refusal still names the caller's first."""
    z, y = Charge(f"{ns}:z", DAY, 1), Charge(f"{ns}:y", DAY, 1)

    async def body(store: BudgetStore) -> None:
        assert await store.spend([z, y], T0) is None
        assert await store.spend([z, y], T0) == z
        assert await store.spend([y, z], T0) == y

    with_store(store_dsn, body)


def test_charges_on_one_counter_are_merged_under_the_strictest_limit(store_dsn: str,
                                                                     ns: str) -> None:
    loose, strict = Charge(f"{ns}:s", DAY, 5, scope="loose"), Charge(f"{ns}:s", DAY, 1,
                                                                      scope="strict")

    async def body(store: BudgetStore) -> None:
        refused = await store.spend([loose, strict], T0)
        assert refused is not None and (refused.scope, refused.limit, refused.cost) == (
            "strict", 1, 2)
        assert await store.spend([loose, loose], T0) is None  # nothing was charged before

    with_store(store_dsn, body)


def test_a_cost_above_the_limit_is_refused_on_a_fresh_counter(store_dsn: str, ns: str) -> None:
    ok, big = Charge(f"{ns}:ok", DAY, 1), Charge(f"{ns}:big", DAY, 2, cost=3)

    async def body(store: BudgetStore) -> None:
        assert await store.spend([ok, big], T0) == big
        assert await store.spend([ok], T0) is None and await store.spend([ok], T0) == ok

    with_store(store_dsn, body)


@pytest.mark.parametrize(("window", "last_in", "first_out"), [
    (MINUTE, T0 + 29, T0 + 30),                                        # 12:00:59 / 12:01:00
    (DAY, datetime(2026, 7, 1, 23, 59, 59, tzinfo=UTC).timestamp(),
     datetime(2026, 7, 2, 0, 0, 0, tzinfo=UTC).timestamp()),           # a UTC day ends
])
def test_fixed_windows_roll_over(store_dsn: str, ns: str, window: int, last_in: float,
                                 first_out: float) -> None:
    c = Charge(f"{ns}:w", window, 2)

    async def body(store: BudgetStore) -> list[Charge | None]:
        return [await store.spend([c], T0), await store.spend([c], T0),
                await store.spend([c], last_in),    # same window: exhausted
                await store.spend([c], first_out)]  # the next window starts afresh

    assert with_store(store_dsn, body) == [None, None, c, None]


def test_concurrent_spends_never_exceed_the_limit(store_dsn: str, ns: str) -> None:
    """Four threads, each with its own connection, 20 spends each on one shared counter
    (limit 25) plus two private counters charged in opposite orders (no deadlock)."""
    shared = Charge(f"{ns}:shared", DAY, 25)
    results: list[Charge | None] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        async def body(store: BudgetStore) -> None:
            for i in range(20):
                x, y = Charge(f"{ns}:x{i % 3}", DAY, 10**6), Charge(f"{ns}:y{i % 3}", DAY, 10**6)
                got = await store.spend([shared, x, y] if n % 2 else [y, x, shared], T0)
                with lock:
                    results.append(got)
        with_store(store_dsn, body)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 80
    assert sum(r is None for r in results) == 25
    assert {r.key for r in results if r is not None} == {shared.key}


def test_unreachable_stores_fail_closed(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(BudgetUnavailable):
        asyncio.run(open_budget_store(f"sqlite:///{tmp_path / 'file' / 'budgets.db'}"))
    with pytest.raises(BudgetUnavailable) as info:
        asyncio.run(open_budget_store("postgresql://postgres@127.0.0.1:1/test"))
    assert info.value.code.name == "UNAVAILABLE"
    assert "cannot be reached" in info.value.outward_message()


def test_unreachable_redis_fails_closed() -> None:
    pytest.importorskip("redis", reason="the redis package is not installed")
    with pytest.raises(BudgetUnavailable):
        asyncio.run(open_budget_store("redis://127.0.0.1:1/0"))


def test_sqlite_counters_survive_reopening(tmp_path: Path) -> None:
    dsn, c = f"sqlite:///{tmp_path / 'b.db'}", Charge("k", DAY, 2)
    assert with_store(dsn, lambda s: s.spend([c, c], T0)) is None
    assert with_store(dsn, lambda s: s.spend([c], T0)) == c


def test_sqlite_maintenance_deletes_ended_windows(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.budgets import _sqlite

    monkeypatch.setattr(_sqlite, "MAINTENANCE_INTERVAL_S", 0.0)
    path = tmp_path / "b.db"

    async def body(store: BudgetStore) -> None:
        assert isinstance(store, _sqlite.SqliteBudgetStore)
        assert await store.spend([Charge("old", DAY, 5), Charge("rate", MINUTE, 5)], T0) is None
        while store._maintenance is not None and not store._maintenance.done():  # noqa: ASYNC110
            await asyncio.sleep(0.01)  # the first spend's maintenance found nothing to delete
        assert await store.spend([Charge("new", DAY, 5)], T0 + 2 * DAY) is None

    with_store(f"sqlite:///{path}", body)  # aclose waits for the maintenance it started
    keys = {k for (k,) in sqlite3.connect(path).execute("SELECT key FROM budget_counters")}
    assert keys == {"new"}


@pytest.mark.postgres
def test_postgres_collects_ended_windows() -> None:
    import psycopg
    from pgw_budget_support import pg_base
    from pgw_crash_harness import pg_schema

    async def body(store: BudgetStore) -> None:
        assert await store.spend([Charge("old", DAY, 5)], T0) is None
        assert await store.spend([Charge("new", DAY, 5)], T0 + 2 * DAY) is None  # collects

    with pg_schema(pg_base()) as dsn:
        with_store(dsn, body)
        with psycopg.connect(dsn) as conn:
            keys = {k for (k,) in conn.execute("SELECT key FROM pgw_budget_counters")}
    assert keys == {"new"}


def test_charge_validation() -> None:
    for bad in ({"window_s": 0}, {"window_s": DAY + 1}, {"limit": 0}, {"cost": 0}):
        with pytest.raises(ValueError, match="want a key"):
            Charge(**{"key": "k", "window_s": DAY, "limit": 1, **bad})  # type: ignore[arg-type]
