"""SQLite audit store: the embedded default.

One connection per store, used as the single writer: WAL journal, ``synchronous=FULL`` (a
commit is on disk before ``append_batch`` returns, so an acknowledged entry survives kill -9 and
power loss), and ``BEGIN IMMEDIATE`` so that indexes are allocated under SQLite's write lock even
when several processes open the same file. A thread lock serialises callers within a process.

Bulk subject sets live in ``audit_subject_sets`` (index, BLOB), written inside the same
``BEGIN IMMEDIATE`` transaction as their entries; the table is created on open like the others,
so a database made before subject sets existed gains it the first time it is opened.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path

from gateway.audit._store import check_profile, check_range, subject_set_rows
from gateway.errors import AuditUnavailable, FieldViolation, InvalidArgument, NotFound
from gateway.logs import get_logger

log = get_logger("pgw.audit")
#: Bytes appended between two WAL checkpoints (SQLite's default: 1000 pages, about 4 MiB).
WAL_CHECKPOINT_BYTES = 4 << 20

__all__ = ["SqliteAuditStore"]

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS audit_meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS audit_seq (id INTEGER PRIMARY KEY CHECK (id = 1),"
    " next_idx INTEGER NOT NULL)",
    "INSERT OR IGNORE INTO audit_seq (id, next_idx) VALUES (1, 0)",
    "CREATE TABLE IF NOT EXISTS audit_entries (idx INTEGER PRIMARY KEY, entry BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS audit_checkpoints (size INTEGER PRIMARY KEY, note TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS audit_cosignatures (size INTEGER NOT NULL, witness TEXT NOT NULL,"
    " line TEXT NOT NULL, PRIMARY KEY (size, witness))",
    "CREATE TABLE IF NOT EXISTS audit_subject_sets (idx INTEGER PRIMARY KEY,"
    " subjects BLOB NOT NULL)",
)


class SqliteAuditStore:
    """:class:`~gateway.audit._store.AuditStore` over one SQLite file (``path``)."""

    def __init__(self, path: str | Path, *, busy_timeout_s: float = 30.0) -> None:
        self._path, self._busy_s = str(path), busy_timeout_s
        self._lock = threading.Lock()
        self._uncheckpointed = 0
        self._checkpointer: threading.Thread | None = None
        try:
            self._conn = sqlite3.connect(self._path, timeout=busy_timeout_s,
                                         isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise AuditUnavailable(f"cannot open SQLite audit store: {exc}") from exc
        with self._tx("open", immediate=False) as conn:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal" and self._path != ":memory:":
                raise AuditUnavailable(f"SQLite journal_mode: got {mode}, want wal")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA wal_autocheckpoint=0")  # see _after_append
        with self._tx("open") as conn:
            for statement in _SCHEMA:
                conn.execute(statement)

    @contextmanager
    def _tx(self, op: str, *, immediate: bool = True) -> Iterator[sqlite3.Connection]:
        """Run one transaction under the thread lock; map sqlite3 errors to AuditUnavailable."""
        with self._lock:
            conn = self._conn
            try:
                if immediate:
                    conn.execute("BEGIN IMMEDIATE")
                yield conn
                if conn.in_transaction:
                    conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    with suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise AuditUnavailable(f"SQLite audit store {op} failed: {exc}") from exc
                raise

    def create(self, hash_name: str, origin: str) -> None:
        with self._tx("create") as conn:
            if check_profile(self._profile(conn), hash_name, origin):
                conn.executemany("INSERT INTO audit_meta (k, v) VALUES (?, ?)",
                                 [("hash", hash_name), ("origin", origin)])

    def profile(self) -> tuple[str, str] | None:
        with self._tx("profile", immediate=False) as conn:
            return self._profile(conn)

    @staticmethod
    def _profile(conn: sqlite3.Connection) -> tuple[str, str] | None:
        meta = dict(conn.execute("SELECT k, v FROM audit_meta").fetchall())
        if "hash" not in meta:
            return None
        return meta["hash"], meta.get("origin", "")

    def append_batch(self, entries: list[bytes],
                     subject_sets: Mapping[int, bytes] | None = None) -> int:
        with self._tx("append") as conn:
            first = int(conn.execute("SELECT next_idx FROM audit_seq WHERE id = 1").fetchone()[0])
            sets = subject_set_rows(first, len(entries), subject_sets)
            if not entries:
                return first
            conn.executemany("INSERT INTO audit_entries (idx, entry) VALUES (?, ?)",
                             zip(range(first, first + len(entries)), entries, strict=True))
            conn.executemany("INSERT INTO audit_subject_sets (idx, subjects) VALUES (?, ?)", sets)
            conn.execute("UPDATE audit_seq SET next_idx = ? WHERE id = 1",
                         (first + len(entries),))
        self._after_append(sum(map(len, entries)) + sum(len(blob) for _, blob in sets))
        return first

    def _after_append(self, appended: int) -> None:
        """Copy the WAL into the database once it holds about WAL_CHECKPOINT_BYTES more, in a
        thread with its own connection. SQLite's own autocheckpoint would do it inside the
        committing append, adding the copy and a database fsync to that batch's latency (0.1-
        0.3 s after one 70 MB bulk-compute entry). PASSIVE: writers are never blocked."""
        self._uncheckpointed += appended
        if (self._path == ":memory:" or self._uncheckpointed < WAL_CHECKPOINT_BYTES
                or (self._checkpointer is not None and self._checkpointer.is_alive())):
            return
        self._uncheckpointed = 0
        self._checkpointer = threading.Thread(target=self._checkpoint, daemon=True,
                                              name="pgw-audit-wal-checkpoint")
        self._checkpointer.start()

    def _checkpoint(self) -> None:
        try:
            conn = sqlite3.connect(self._path, timeout=self._busy_s, isolation_level=None)
            try:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            finally:
                conn.close()
        except sqlite3.Error as exc:  # retried after the next WAL_CHECKPOINT_BYTES
            log.warning("audit_wal_checkpoint_failed", error=type(exc).__name__)

    def size(self) -> int:
        with self._tx("size", immediate=False) as conn:
            return int(conn.execute("SELECT next_idx FROM audit_seq WHERE id = 1").fetchone()[0])

    def read(self, start: int, end: int) -> list[bytes]:
        with self._tx("read", immediate=False) as conn:
            conn.execute("BEGIN")  # one snapshot for the size check and the rows
            size = int(conn.execute("SELECT next_idx FROM audit_seq WHERE id = 1").fetchone()[0])
            check_range(start, end, size)
            rows = conn.execute("SELECT entry FROM audit_entries WHERE idx >= ? AND idx < ?"
                                " ORDER BY idx", (start, end)).fetchall()
        if len(rows) != end - start:
            raise AuditUnavailable(f"SQLite audit store has a gap in [{start}, {end}): "
                                   f"got {len(rows)} entries, want {end - start}")
        if not all(isinstance(row[0], bytes) for row in rows):
            raise AuditUnavailable(f"SQLite audit store has a non-BLOB entry in [{start}, {end})")
        return [row[0] for row in rows]

    def read_indexed(self, start: int, end: int) -> list[tuple[int, bytes]]:
        """Rows with their stored indexes, as they are (no gap check): for the verifier."""
        with self._tx("read_indexed", immediate=False) as conn:
            rows = conn.execute("SELECT idx, entry FROM audit_entries WHERE idx >= ? AND idx < ?"
                                " ORDER BY idx", (start, end)).fetchall()
        return [(int(i), bytes(e)) for i, e in rows]

    def read_subject_set(self, index: int) -> bytes | None:
        with self._tx("read_subject_set", immediate=False) as conn:
            row = conn.execute("SELECT subjects FROM audit_subject_sets WHERE idx = ?",
                               (index,)).fetchone()
        if row is not None and not isinstance(row[0], bytes):
            raise AuditUnavailable(f"SQLite audit store has a non-BLOB subject set at {index}")
        return None if row is None else bytes(row[0])

    def subject_set_indexes(self, start: int, end: int) -> list[int]:
        with self._tx("subject_set_indexes", immediate=False) as conn:
            rows = conn.execute("SELECT idx FROM audit_subject_sets WHERE idx >= ? AND idx < ?"
                                " ORDER BY idx", (start, end)).fetchall()
        return [int(r[0]) for r in rows]

    def checkpoint_sizes(self) -> list[int]:
        with self._tx("checkpoint_sizes", immediate=False) as conn:
            rows = conn.execute("SELECT size FROM audit_checkpoints ORDER BY size").fetchall()
        return [int(r[0]) for r in rows]

    def save_checkpoint(self, size: int, note_text: str) -> None:
        with self._tx("save_checkpoint") as conn:
            stored = int(conn.execute("SELECT next_idx FROM audit_seq WHERE id = 1").fetchone()[0])
            if not 0 <= size <= stored:
                raise InvalidArgument(FieldViolation("size", f"got {size}, want 0..{stored}"))
            conn.execute("INSERT OR IGNORE INTO audit_checkpoints (size, note) VALUES (?, ?)",
                         (size, note_text))

    def latest_checkpoint(self) -> tuple[int, str] | None:
        with self._tx("latest_checkpoint", immediate=False) as conn:
            row = conn.execute("SELECT size, note FROM audit_checkpoints"
                               " ORDER BY size DESC LIMIT 1").fetchone()
        return None if row is None else (int(row[0]), str(row[1]))

    def checkpoint_at(self, size: int) -> str | None:
        with self._tx("checkpoint_at", immediate=False) as conn:
            row = conn.execute("SELECT note FROM audit_checkpoints WHERE size = ?",
                               (size,)).fetchone()
        return None if row is None else str(row[0])

    def add_cosignature(self, size: int, witness_name: str, line: str) -> None:
        with self._tx("add_cosignature") as conn:
            if conn.execute("SELECT 1 FROM audit_checkpoints WHERE size = ?",
                            (size,)).fetchone() is None:
                raise NotFound(f"no checkpoint at size {size} to cosign")
            conn.execute("INSERT INTO audit_cosignatures (size, witness, line) VALUES (?, ?, ?)"
                         " ON CONFLICT (size, witness) DO UPDATE SET line = excluded.line",
                         (size, witness_name, line))

    def cosignatures(self, size: int) -> list[tuple[str, str]]:
        with self._tx("cosignatures", immediate=False) as conn:
            rows = conn.execute("SELECT witness, line FROM audit_cosignatures WHERE size = ?"
                                " ORDER BY witness", (size,)).fetchall()
        return [(str(w), str(line)) for w, line in rows]

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.join()
        with self._lock:
            self._conn.close()
