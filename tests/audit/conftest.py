"""Fixtures for the audit store and log tests: both backends, real servers, fault injection.

``store_target`` runs a test once on SQLite (a fresh file) and once on PostgreSQL (a fresh,
uniquely named schema on the server named by ``PGW_TEST_PG_DSN``, selected through the DSN's
``search_path`` and dropped afterwards). Faults are injected into the real database with a
trigger that aborts the insert of one chosen index, so "mid-batch" really is mid-transaction.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

from gateway.audit._hasher import get_hasher
from gateway.audit._note import NoteSigner
from gateway.audit._store import AuditStore, iter_entries, open_store
from gateway.audit._tree import MerkleTree

PG_ENV = "PGW_TEST_PG_DSN"
PG_SKIP = f"{PG_ENV} not set: PostgreSQL store tests need a server"
ORIGIN = "pgw.test/audit"


@dataclass(frozen=True)
class StoreTarget:
    """One empty store to test against: its backend, DSN and an admin SQL channel."""

    kind: str  # "sqlite" or "postgres"
    dsn: str
    admin_dsn: str  # SQLite path, or a PostgreSQL DSN with the same search_path

    def execute(self, sql: str) -> None:
        """Run admin SQL (fault triggers) outside the store under test."""
        if self.kind == "sqlite":
            conn = sqlite3.connect(self.admin_dsn, isolation_level=None)
            try:
                conn.executescript(sql)
            finally:
                conn.close()
        else:
            import psycopg

            with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
                conn.execute(sql.encode())

    def inject_insert_fault(self, index: int, table: str = "audit_entries") -> None:
        """Make the insert of row ``index`` into ``table`` (entries, or ``audit_subject_sets``:
        after the batch's entries were inserted) fail inside the database."""
        if self.kind == "sqlite":
            self.execute(f"CREATE TRIGGER pgw_fault BEFORE INSERT ON {table}"
                         f" WHEN NEW.idx = {index} BEGIN SELECT RAISE(ABORT, 'injected fault');"
                         f" END;")
        else:
            self.execute(
                "CREATE FUNCTION pgw_fault() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
                f" IF NEW.idx = {index} THEN RAISE EXCEPTION 'injected fault'; END IF;"
                " RETURN NEW; END $$;"
                f" CREATE TRIGGER pgw_fault BEFORE INSERT ON {table}"
                " FOR EACH ROW EXECUTE FUNCTION pgw_fault();")

    def clear_fault(self, table: str = "audit_entries") -> None:
        if self.kind == "sqlite":
            self.execute("DROP TRIGGER pgw_fault;")
        else:
            self.execute(f"DROP TRIGGER pgw_fault ON {table}; DROP FUNCTION pgw_fault();")


def _pg_target() -> Iterator[StoreTarget]:
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(PG_SKIP)
    import psycopg

    schema = f"pgw_audit_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}".encode())
    dsn = f"{base}{'&' if '?' in base else '?'}options={quote(f'-csearch_path={schema}')}"
    try:
        yield StoreTarget("postgres", dsn, dsn)
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(b"SET lock_timeout = '20s'")
            conn.execute(f"DROP SCHEMA {schema} CASCADE".encode())


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreTarget]:
    """An empty store on each backend in turn."""
    if request.param == "sqlite":
        path = tmp_path / "audit.db"
        yield StoreTarget("sqlite", f"sqlite://{path}", str(path))
    else:
        yield from _pg_target()


@pytest.fixture
def pg_target() -> Iterator[StoreTarget]:
    """An empty PostgreSQL store (skipped without ``PGW_TEST_PG_DSN``)."""
    yield from _pg_target()


@pytest.fixture
def signer() -> NoteSigner:
    return NoteSigner.generate("pgw.test-log")


def _recompute_root(dsn: str, hash_name: str = "sha256") -> tuple[int, bytes]:
    """Size and RFC 9162 root of everything in the store, recomputed from scratch."""
    hasher = get_hasher(hash_name)
    store = open_store(dsn)
    try:
        tree = MerkleTree(hasher)
        tree.extend(hasher.leaf(entry) for _, entry in iter_entries(store))
    finally:
        store.close()
    return tree.size, tree.root()


@pytest.fixture
def store(store_target: StoreTarget) -> Iterator[AuditStore]:
    """An open, empty store on ``store_target`` (SQLite, then PostgreSQL) with the test origin."""
    s = open_store(store_target.dsn)
    s.create("sha256", ORIGIN)
    yield s
    s.close()


@pytest.fixture
def recompute_root() -> Callable[..., tuple[int, bytes]]:
    """``recompute_root(dsn, hash_name="sha256") -> (size, root)`` from the stored entries."""
    return _recompute_root
