"""AuditStore contract on both backends (SQLite always, PostgreSQL with PGW_TEST_PG_DSN)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from gateway.audit._store import AuditStore, iter_entries, open_store
from gateway.audit._store_sqlite import WAL_CHECKPOINT_BYTES, SqliteAuditStore
from gateway.errors import AuditUnavailable, ConfigError, InvalidArgument, NotFound

ORIGIN = "pgw.test/audit"


def _entries(start: int, count: int) -> list[bytes]:
    return [f'{{"n":{n}}}'.encode() for n in range(start, start + count)]


def test_append_batches_get_dense_indexes_and_read_back(store: AuditStore) -> None:
    assert isinstance(store, AuditStore)
    assert store.size() == 0
    assert store.append_batch(_entries(0, 3)) == 0
    assert store.append_batch([]) == 3
    assert store.append_batch(_entries(3, 5)) == 3
    assert store.size() == 8
    assert store.read(0, 8) == _entries(0, 8)
    assert store.read(2, 4) == _entries(2, 2)
    assert store.read(8, 8) == []
    assert list(iter_entries(store, chunk=3)) == list(enumerate(_entries(0, 8)))


@pytest.mark.parametrize(("start", "end"), [(-1, 2), (0, 9), (5, 4)])
def test_read_outside_the_log_is_refused(store: AuditStore, start: int, end: int) -> None:
    store.append_batch(_entries(0, 8))
    with pytest.raises(InvalidArgument):
        store.read(start, end)


def test_failure_mid_batch_leaves_nothing(store: AuditStore, store_target: Any) -> None:
    store.append_batch(_entries(0, 2))
    store_target.inject_insert_fault(4)  # third entry of the next batch
    with pytest.raises(AuditUnavailable, match="injected fault"):
        store.append_batch(_entries(2, 5))
    assert store.size() == 2
    with pytest.raises(InvalidArgument):
        store.read(2, 3)
    store_target.clear_fault()
    assert store.append_batch(_entries(2, 5)) == 2  # the failed batch's indexes are reused
    assert store.read(0, 7) == _entries(0, 7)


def test_profile_is_fixed_at_creation(store_target: Any) -> None:
    first = open_store(store_target.dsn)
    assert first.profile() is None
    first.create("sm3", ORIGIN)
    first.create("sm3", ORIGIN)  # idempotent with the same profile
    first.append_batch(_entries(0, 1))
    first.close()
    again = open_store(store_target.dsn)
    try:
        assert again.profile() == ("sm3", ORIGIN)
        with pytest.raises(ConfigError, match=r"created with 'sm3'.*'sha256'"):
            again.create("sha256", ORIGIN)
        with pytest.raises(ConfigError, match="origin mismatch"):
            again.create("sm3", "pgw.test/other")
        assert again.profile() == ("sm3", ORIGIN)
    finally:
        again.close()


def test_checkpoints_and_cosignatures(store: AuditStore) -> None:
    assert store.latest_checkpoint() is None
    store.append_batch(_entries(0, 4))
    store.save_checkpoint(2, "note-2\n")
    store.save_checkpoint(4, "note-4\n")
    store.save_checkpoint(4, "another-note-4\n")  # first one per size wins
    assert store.latest_checkpoint() == (4, "note-4\n")
    assert store.checkpoint_at(2) == "note-2\n"
    assert store.checkpoint_at(3) is None
    with pytest.raises(InvalidArgument):
        store.save_checkpoint(5, "beyond the log\n")
    store.add_cosignature(4, "witness-b", "line-b1")
    store.add_cosignature(4, "witness-a", "line-a")
    store.add_cosignature(4, "witness-b", "line-b2")  # a witness's newer line replaces its old
    assert store.cosignatures(4) == [("witness-a", "line-a"), ("witness-b", "line-b2")]
    assert store.cosignatures(2) == []
    with pytest.raises(NotFound):
        store.add_cosignature(3, "witness-a", "line")


def test_concurrent_writers_on_separate_connections_never_share_an_index(
        store: AuditStore, store_target: Any) -> None:
    writers, batches, per_batch = 4, 15, 7
    firsts: list[list[int]] = [[] for _ in range(writers)]

    def work(w: int) -> None:
        own = open_store(store_target.dsn)
        try:
            for b in range(batches):
                firsts[w].append(own.append_batch(_entries(1000 * w + per_batch * b, per_batch)))
        finally:
            own.close()

    threads = [threading.Thread(target=work, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    starts = sorted(f for fs in firsts for f in fs)
    assert starts == list(range(0, writers * batches * per_batch, per_batch))
    assert store.size() == writers * batches * per_batch
    entries = store.read(0, store.size())
    for w, fs in enumerate(firsts):  # each batch is contiguous and in order
        for b, first in enumerate(fs):
            assert entries[first:first + per_batch] == _entries(1000 * w + per_batch * b,
                                                                per_batch)


def test_sqlite_is_wal_with_full_sync(tmp_path: Path) -> None:
    store = SqliteAuditStore(tmp_path / "a.db")
    try:
        conn = store._conn  # white-box: the durability settings are the point of the test
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    finally:
        store.close()


def test_wal_is_checkpointed_off_the_append(tmp_path: Path) -> None:
    """Autocheckpoint is off; after WAL_CHECKPOINT_BYTES a background thread copies the WAL
    into the database file (which stays at its first pages until then)."""
    path = tmp_path / "a.db"
    s = SqliteAuditStore(path)
    try:
        s.create("sha256", "o")
        assert s._conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        s.append_batch([b"x" * 1024] * 16)
        small = path.stat().st_size
        assert small < 1 << 20 and s._checkpointer is None
        s.append_batch([bytes(1 << 20)] * (WAL_CHECKPOINT_BYTES // (1 << 20) + 1))
        assert s._checkpointer is not None
        s._checkpointer.join(30)
        assert path.stat().st_size > WAL_CHECKPOINT_BYTES
        assert len(s.read(0, 16)) == 16
    finally:
        s.close()


def test_dsn_forms(tmp_path: Path) -> None:
    for dsn in (f"sqlite://{tmp_path}/a.db", str(tmp_path / "b.db")):
        s = open_store(dsn)
        assert isinstance(s, SqliteAuditStore)
        s.close()
    with pytest.raises(ConfigError, match="scheme 'mysql'"):
        open_store("mysql://localhost/audit")
    with pytest.raises(ConfigError):
        open_store("sqlite://")


def test_unreachable_backends_fail_closed(tmp_path: Path) -> None:
    with pytest.raises(AuditUnavailable):
        open_store(str(tmp_path / "missing-dir" / "a.db"))
    with pytest.raises(AuditUnavailable):
        open_store("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")
