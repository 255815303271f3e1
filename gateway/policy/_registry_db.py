"""Storage of the agreement registry: two tables beside the audit log, SQLite or PostgreSQL.

One transaction per call, serialised by a thread lock; uniqueness conflicts surface as
:class:`Conflict` (another replica got there first), other database errors as ``Unavailable``.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from contextlib import suppress
from typing import Any

from gateway.errors import ConfigError, Unavailable

PG_SCHEMA_LOCK = 0x7067776167726565  # "pgwagree"
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS agreement_proposals (proposal_id TEXT PRIMARY KEY,"
    " agreement_id TEXT NOT NULL, version INTEGER NOT NULL, content_hash TEXT NOT NULL,"
    " document TEXT NOT NULL, origin TEXT NOT NULL, proposer_org TEXT NOT NULL,"
    " proposer_subject TEXT NOT NULL, proposed_at TEXT NOT NULL, state TEXT NOT NULL,"
    " changed_at TEXT NOT NULL, changed_by TEXT NOT NULL, UNIQUE (agreement_id, version))",
    "CREATE TABLE IF NOT EXISTS agreement_approvals (proposal_id TEXT NOT NULL,"
    " approver_org TEXT NOT NULL, approver_subject TEXT NOT NULL, approved_at TEXT NOT NULL,"
    " PRIMARY KEY (proposal_id, approver_org, approver_subject))",
)
Stmt = tuple[str, tuple[Any, ...]]
COLUMNS = ("proposal_id, agreement_id, version, content_hash, document, origin, proposer_org,"
            " proposer_subject, proposed_at, state, changed_at, changed_by")


class Conflict(Exception):
    """A uniqueness constraint refused a write (another replica got there first)."""


class RegistryDb:
    """The two tables on SQLite or PostgreSQL; one transaction per call, thread-safe."""

    def __init__(self, dsn: str) -> None:
        self._lock = threading.Lock()
        self._dsn = dsn
        self._pg = dsn.startswith(("postgresql://", "postgres://"))
        self._conn: Any = None
        if not self._pg:
            if dsn.startswith("sqlite://"):
                self._path = dsn.removeprefix("sqlite://")
            elif "://" in dsn:
                raise ConfigError(f"agreement registry DSN scheme {dsn.split('://')[0]!r}: "
                                  "want postgresql, sqlite or a path")
            else:
                self._path = dsn
        lock = [("SELECT pg_advisory_xact_lock(?)", (PG_SCHEMA_LOCK,))] if self._pg else []
        self.write(lock + [(s, ()) for s in SCHEMA])

    def _connect(self) -> Any:
        if self._pg:
            import psycopg

            if self._conn is None or self._conn.closed or self._conn.broken:
                self._conn = psycopg.connect(self._dsn, autocommit=True, connect_timeout=10)
                self._conn.execute("SET synchronous_commit = on")
        elif self._conn is None:
            self._conn = sqlite3.connect(self._path, timeout=30.0, isolation_level=None,
                                         check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
        return self._conn

    def _errors(self) -> tuple[type[Exception], type[Exception]]:
        if self._pg:
            import psycopg

            return psycopg.Error, psycopg.errors.IntegrityError
        return sqlite3.Error, sqlite3.IntegrityError

    def _run(self, op: str, statements: Sequence[tuple[str, tuple[Any, ...]]],
             fetch: bool) -> list[Any]:
        error, integrity = self._errors()
        with self._lock:
            try:
                conn = self._connect()
                if self._pg:
                    with conn.transaction(), conn.cursor() as cur:
                        return [self._pg_exec(cur, sql, args, fetch) for sql, args in statements]
                conn.execute("BEGIN" if fetch else "BEGIN IMMEDIATE")
                try:
                    out = []
                    for sql, args in statements:
                        cur = conn.execute(sql, args)
                        out.append(cur.fetchall() if fetch else cur.rowcount)
                    conn.execute("COMMIT")
                    return out
                except BaseException:
                    with suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                    raise
            except integrity as exc:
                raise Conflict(str(exc)) from exc
            except error as exc:
                raise Unavailable("the agreement registry store is unavailable",
                                  reason=f"registry {op}: {type(exc).__name__}: {exc}") from exc

    @staticmethod
    def _pg_exec(cur: Any, sql: str, args: tuple[Any, ...], fetch: bool) -> Any:
        cur.execute(sql.replace("?", "%s"), args or None)
        return cur.fetchall() if fetch else cur.rowcount

    def read(self, statements: Sequence[Stmt]) -> list[list[tuple[Any, ...]]]:
        return self._run("read", statements, fetch=True)

    def write(self, statements: Sequence[Stmt]) -> list[int]:
        return self._run("write", statements, fetch=False)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
