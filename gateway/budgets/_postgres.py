"""PostgreSQL budget store (psycopg 3, async): the counters every gateway replica shares.

One round trip per spend: ``SELECT pgw_budget_spend(...)``, a PL/pgSQL function created with the
table, runs in one transaction. For each counter, in ``(key, start)`` order so that concurrent
spends lock rows in the same order and cannot deadlock, it does the guarded upsert
``INSERT ... ON CONFLICT DO UPDATE SET used = used + cost WHERE used + cost <= limit``; the row
lock makes check and increment one step across replicas. If any counter was refused, an
exception undoes the call's increments and the function returns the refused positions.

Commits do not wait for the WAL flush (``synchronous_commit = off`` on this connection only):
a spend is visible to every replica at once, and a PostgreSQL crash may forget the last few
hundred milliseconds of spends (under-counting, never corruption), as SQLite's NORMAL does.

Every ``GC_INTERVAL_S`` one spend afterwards deletes a batch of ended windows (a failure there
is logged, never a refused spend).

Tables use unqualified names, so the connection's ``search_path`` decides where they live (as
for the audit store). A broken connection is reopened on the next spend; the failed spend raised
:class:`~gateway.budgets.BudgetUnavailable`, as does a spend slower than ``timeout_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import psycopg

from gateway.budgets._errors import BudgetUnavailable
from gateway.budgets._store import BudgetStore, Charge
from gateway.logs import get_logger

__all__ = ["PostgresBudgetStore"]

log = get_logger("pgw.budgets")

#: Key of the advisory lock taken while creating the schema ("pgwbudgt" in ASCII).
_SCHEMA_LOCK = 0x7067776275646774
#: Every GC_INTERVAL_S one spend also deletes up to GC_BATCH rows of ended windows.
GC_INTERVAL_S = 10.0
GC_BATCH = 1000

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS pgw_budget_counters (key text NOT NULL, start bigint NOT NULL,"
    " expires bigint NOT NULL, used bigint NOT NULL, PRIMARY KEY (key, start))",
    "CREATE INDEX IF NOT EXISTS pgw_budget_counters_expires ON pgw_budget_counters (expires)",
    """CREATE OR REPLACE FUNCTION pgw_budget_spend(k text[], s bigint[], e bigint[], c bigint[],
                                                  l bigint[]) RETURNS integer[]
LANGUAGE plpgsql AS $$
DECLARE
  refused integer[] := '{}';
  n integer;
BEGIN
  BEGIN
    FOR i IN 1 .. cardinality(k) LOOP
      IF c[i] > l[i] THEN
        refused := refused || i;
        CONTINUE;
      END IF;
      INSERT INTO pgw_budget_counters AS b (key, start, expires, used)
      VALUES (k[i], s[i], e[i], c[i])
      ON CONFLICT (key, start) DO UPDATE SET used = b.used + excluded.used
      WHERE b.used + excluded.used <= l[i];
      GET DIAGNOSTICS n = ROW_COUNT;
      IF n = 0 THEN
        refused := refused || i;
      END IF;
    END LOOP;
    IF cardinality(refused) > 0 THEN
      RAISE EXCEPTION 'budget refused' USING ERRCODE = 'PGWB1';  -- undoes this block
    END IF;
  EXCEPTION WHEN SQLSTATE 'PGWB1' THEN
    RETURN refused;
  END;
  RETURN refused;
END $$""",
)
_GC = ("DELETE FROM pgw_budget_counters WHERE ctid IN (SELECT ctid FROM pgw_budget_counters"
       f" WHERE expires <= %s LIMIT {GC_BATCH})")
_SPEND = ("SELECT pgw_budget_spend(%s::text[], %s::bigint[], %s::bigint[], %s::bigint[],"
          " %s::bigint[])")


class PostgresBudgetStore(BudgetStore):
    """Counters in PostgreSQL at ``dsn``; open with :meth:`open` (creates the schema)."""

    def __init__(self, dsn: str, *, timeout_s: float = 5.0) -> None:
        self._dsn, self._timeout = dsn, timeout_s
        self._conn: psycopg.AsyncConnection[tuple[object, ...]] | None = None
        self._lock = asyncio.Lock()
        self._next_gc = 0.0

    @classmethod
    async def open(cls, dsn: str, *, timeout_s: float = 5.0) -> PostgresBudgetStore:
        store = cls(dsn, timeout_s=timeout_s)
        async with store._guard("open"):
            conn = await store._connect()
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                for statement in _SCHEMA:
                    await conn.execute(statement.encode())
        return store

    async def _connect(self) -> psycopg.AsyncConnection[tuple[object, ...]]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            if self._conn is not None:
                await self._conn.close()
            self._conn = await psycopg.AsyncConnection.connect(
                self._dsn, autocommit=True, connect_timeout=max(1, int(self._timeout)))
            await self._conn.execute("SET synchronous_commit = off")
        return self._conn

    @contextlib.asynccontextmanager
    async def _guard(self, op: str) -> AsyncIterator[None]:
        """One operation at a time, bounded in time; failures become BudgetUnavailable."""
        async with self._lock:
            try:
                async with asyncio.timeout(self._timeout):
                    yield
            except (psycopg.Error, OSError, TimeoutError) as exc:
                if self._conn is not None:  # state unknown: start afresh next time
                    with contextlib.suppress(psycopg.Error, OSError):
                        await self._conn.close()
                    self._conn = None
                what = "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__
                raise BudgetUnavailable(f"PostgreSQL budget store: {op}: {what}",
                                        reason=f"budget store {op}: {what}") from None

    async def _spend(self, charges: list[Charge], now: float) -> Charge | None:
        ordered = sorted(range(len(charges)), key=lambda i: (charges[i].key,
                                                             charges[i].window(now)[0]))
        cols: tuple[list[object], ...] = ([], [], [], [], [])
        for i in ordered:
            c = charges[i]
            for col, value in zip(cols, (c.key, *c.window(now), c.cost, c.limit), strict=True):
                col.append(value)
        async with self._guard("spend"):
            conn = await self._connect()
            row = await (await conn.execute(_SPEND, cols)).fetchone()
        if now >= self._next_gc:
            self._next_gc = now + GC_INTERVAL_S
            await self._collect(now)
        refused = row[0] if row is not None else None
        if not isinstance(refused, list):
            raise BudgetUnavailable(f"PostgreSQL budget store: got {refused!r}, want a list")
        return charges[min(ordered[p - 1] for p in refused)] if refused else None

    async def _collect(self, now: float) -> None:
        """Delete one batch of ended windows; a failure here never fails a spend."""
        try:
            async with self._guard("collect"):
                conn = await self._connect()
                await conn.execute(_GC, (int(now),))
        except BudgetUnavailable as err:
            log.warning("budget_gc_failed", reason=err.reason)

    async def aclose(self) -> None:
        async with self._lock:
            if self._conn is not None:
                await self._conn.close()
                self._conn = None
