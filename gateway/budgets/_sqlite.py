"""SQLite budget store: the embedded default, a file beside the audit database.

Each spend is one ``BEGIN IMMEDIATE`` transaction of guarded upserts (``ON CONFLICT DO UPDATE
... WHERE used + cost <= limit``) in the caller's order; the first upsert that changes no row is
the violated charge and the transaction is rolled back. ``BEGIN IMMEDIATE`` takes the write lock
first, so several processes on one file are exact too.

The spend runs inline on the caller's thread (no thread hop): with WAL and ``synchronous=NORMAL``
a commit only appends to the WAL and never waits for the disk, tens of microseconds (measured by
``bench/budgets.py``). What does wait for the disk, the WAL checkpoint, is taken off that path:
automatic checkpoints are off on the serving connection, and a worker thread with its own
connection checkpoints (PASSIVE, writers are not blocked) every ``MAINTENANCE_INTERVAL_S`` and
deletes ended windows in small batches. An OS crash or power loss may forget the last spends; a
killed process does not.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from pathlib import Path

from gateway.budgets._errors import BudgetUnavailable
from gateway.budgets._store import DAY, BudgetStore, Charge
from gateway.logs import get_logger

__all__ = ["SqliteBudgetStore"]

log = get_logger("pgw.budgets")
MAINTENANCE_INTERVAL_S = 1.0
GC_BATCH = 500

_SCHEMA = ("CREATE TABLE IF NOT EXISTS budget_counters (start INTEGER NOT NULL, key TEXT NOT NULL,"
           " expires INTEGER NOT NULL, used INTEGER NOT NULL, PRIMARY KEY (start, key))"
           " WITHOUT ROWID")
_UPSERT = ("INSERT INTO budget_counters (start, key, expires, used) VALUES (?, ?, ?, ?)"
           " ON CONFLICT (start, key) DO UPDATE SET used = used + excluded.used"
           " WHERE used + excluded.used <= ?")
# Windows are at most a day long, so one that started over a day ago has ended.
_GC = ("DELETE FROM budget_counters WHERE (start, key) IN (SELECT start, key FROM"
       f" budget_counters WHERE start < ? LIMIT {GC_BATCH})")


def _connect(path: str, busy_timeout_ms: int) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    return conn


class SqliteBudgetStore(BudgetStore):
    """Counters in the SQLite file at ``path`` (``":memory:"``: this process only)."""

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 5000) -> None:
        self.path, self._busy = str(path), busy_timeout_ms
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._conn = _connect(self.path, busy_timeout_ms)
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.execute("PRAGMA wal_autocheckpoint = 0")  # the worker checkpoints
            self._conn.execute(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise BudgetUnavailable(f"budget store {self.path}: cannot open: {exc}") from None
        self._worker: sqlite3.Connection | None = None
        self._worker_lock = threading.Lock()
        self._maintenance: asyncio.Future[None] | None = None
        self._next_maintenance = 0.0

    async def _spend(self, charges: list[Charge], now: float) -> Charge | None:
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            refused = None
            for c in charges:
                start, end = c.window(now)
                if c.cost > c.limit or conn.execute(
                        _UPSERT, (start, c.key, end, c.cost, c.limit)).rowcount == 0:
                    refused = c
                    break
            conn.execute("ROLLBACK" if refused else "COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise BudgetUnavailable(f"budget store {self.path}: {exc}") from None
        self._schedule_maintenance(now)
        return refused

    def _schedule_maintenance(self, now: float) -> None:
        t = time.monotonic()
        if self.path == ":memory:" or t < self._next_maintenance or (
                self._maintenance is not None and not self._maintenance.done()):
            return
        self._next_maintenance = t + MAINTENANCE_INTERVAL_S
        self._maintenance = asyncio.get_running_loop().run_in_executor(
            None, self._maintain, int(now) - DAY)

    def _maintain(self, ended_before: int) -> None:
        """In a worker thread: delete ended windows in small batches, then checkpoint."""
        with self._worker_lock:
            try:
                if self._worker is None:
                    self._worker = _connect(self.path, self._busy)
                while self._worker.execute(_GC, (ended_before,)).rowcount >= GC_BATCH:
                    pass
                self._worker.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error as exc:  # the next spend reports a store that is really down
                log.warning("budget_maintenance_failed", path=self.path, error=str(exc))

    async def aclose(self) -> None:
        if self._maintenance is not None:
            with contextlib.suppress(Exception):
                await self._maintenance
        with self._worker_lock:
            if self._worker is not None:
                self._worker.close()
                self._worker = None
        self._conn.close()  # the last connection to close checkpoints the WAL into the file
