"""PostgreSQL audit store (psycopg 3, synchronous) for several gateway replicas on one database.

Tables use unqualified names, so the connection's ``search_path`` decides where they live (a
DSN may carry ``options=-csearch_path=...``). They are created if absent, under a transaction-
scoped advisory lock so that replicas starting together do not race on ``CREATE TABLE``.

Index allocation: ``append_batch`` locks the single ``audit_seq`` row (``SELECT ... FOR UPDATE``),
COPYs the batch in binary, advances the sequence and commits, all in one transaction with
``synchronous_commit = on``. Replicas therefore serialise on that row only for the length of one
batch, and the committed indexes are dense with no reuse and no gap. Bulk subject sets are
COPYd into ``audit_subject_sets`` (index, bytea) inside that same transaction; the table is
created with the others, so a database made before subject sets existed gains it on open.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import psycopg

from gateway.audit._store import check_profile, check_range, subject_set_rows
from gateway.errors import AuditUnavailable, FieldViolation, InvalidArgument, NotFound

__all__ = ["PostgresAuditStore"]

#: Key of the advisory lock taken while creating tables ("pgwaudit" in ASCII).
_SCHEMA_LOCK = 0x7067776175646974

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS audit_meta (k text PRIMARY KEY, v text NOT NULL)",
    "CREATE TABLE IF NOT EXISTS audit_seq (id smallint PRIMARY KEY CHECK (id = 1),"
    " next_idx bigint NOT NULL)",
    "INSERT INTO audit_seq (id, next_idx) VALUES (1, 0) ON CONFLICT (id) DO NOTHING",
    "CREATE TABLE IF NOT EXISTS audit_entries (idx bigint PRIMARY KEY, entry bytea NOT NULL)",
    "CREATE TABLE IF NOT EXISTS audit_checkpoints (size bigint PRIMARY KEY, note text NOT NULL)",
    "CREATE TABLE IF NOT EXISTS audit_cosignatures (size bigint NOT NULL, witness text NOT NULL,"
    " line text NOT NULL, PRIMARY KEY (size, witness))",
    "CREATE TABLE IF NOT EXISTS audit_subject_sets (idx bigint PRIMARY KEY,"
    " subjects bytea NOT NULL)",
)


def _int(value: object) -> int:
    if not isinstance(value, int):
        raise AuditUnavailable(f"PostgreSQL audit store: got {type(value).__name__}, want int")
    return value


class PostgresAuditStore:
    """:class:`~gateway.audit._store.AuditStore` over one PostgreSQL connection (``dsn``).

    A broken connection is reopened on the next call; the failed call raised AuditUnavailable.
    """

    def __init__(self, dsn: str, *, connect_timeout_s: int = 10) -> None:
        self._dsn = dsn
        self._timeout = connect_timeout_s
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        with self._tx("open") as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            for statement in _SCHEMA:
                cur.execute(statement)

    def _connect(self) -> psycopg.Connection[tuple[object, ...]]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            if self._conn is not None:
                self._conn.close()
            self._conn = psycopg.connect(self._dsn, autocommit=True,
                                         connect_timeout=self._timeout)
            self._conn.execute("SET synchronous_commit = on")
        return self._conn

    @contextmanager
    def _tx(self, op: str) -> Iterator[psycopg.Cursor[tuple[object, ...]]]:
        """One transaction under the thread lock; psycopg errors become AuditUnavailable."""
        with self._lock:
            try:
                conn = self._connect()
                with conn.transaction(), conn.cursor(binary=True) as cur:
                    yield cur
            except psycopg.Error as exc:
                raise AuditUnavailable(f"PostgreSQL audit store {op} failed: "
                                       f"{type(exc).__name__}: {exc}") from exc

    @staticmethod
    def _next_idx(cur: psycopg.Cursor[tuple[object, ...]], *, lock: bool = False) -> int:
        cur.execute("SELECT next_idx FROM audit_seq WHERE id = 1" + (" FOR UPDATE" if lock else ""))
        row = cur.fetchone()
        assert row is not None, "audit_seq row is created with the schema"
        return _int(row[0])

    def create(self, hash_name: str, origin: str) -> None:
        with self._tx("create") as cur:
            cur.execute("SELECT 1 FROM audit_seq WHERE id = 1 FOR UPDATE")
            if check_profile(self._profile(cur), hash_name, origin):
                cur.executemany("INSERT INTO audit_meta (k, v) VALUES (%s, %s)",
                                [("hash", hash_name), ("origin", origin)])

    def profile(self) -> tuple[str, str] | None:
        with self._tx("profile") as cur:
            return self._profile(cur)

    @staticmethod
    def _profile(cur: psycopg.Cursor[tuple[object, ...]]) -> tuple[str, str] | None:
        cur.execute("SELECT k, v FROM audit_meta")
        meta = {str(k): str(v) for k, v in cur.fetchall()}
        if "hash" not in meta:
            return None
        return meta["hash"], meta.get("origin", "")

    def append_batch(self, entries: list[bytes],
                     subject_sets: Mapping[int, bytes] | None = None) -> int:
        with self._tx("append") as cur:
            first = self._next_idx(cur, lock=True)
            sets = subject_set_rows(first, len(entries), subject_sets)
            if not entries:
                return first
            with cur.copy("COPY audit_entries (idx, entry) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["int8", "bytea"])
                for index, entry in enumerate(entries, start=first):
                    copy.write_row((index, entry))
            if sets:
                with cur.copy("COPY audit_subject_sets (idx, subjects) FROM STDIN"
                              " (FORMAT BINARY)") as copy:
                    copy.set_types(["int8", "bytea"])
                    for row in sets:
                        copy.write_row(row)
            cur.execute("UPDATE audit_seq SET next_idx = %s WHERE id = 1",
                        (first + len(entries),))
            return first

    def size(self) -> int:
        with self._tx("size") as cur:
            return self._next_idx(cur)

    def read(self, start: int, end: int) -> list[bytes]:
        with self._tx("read") as cur:
            check_range(start, end, self._next_idx(cur))
            cur.execute("SELECT entry FROM audit_entries WHERE idx >= %s AND idx < %s"
                        " ORDER BY idx", (start, end))
            rows = cur.fetchall()
        if len(rows) != end - start:
            raise AuditUnavailable(f"PostgreSQL audit store has a gap in [{start}, {end}): "
                                   f"got {len(rows)} entries, want {end - start}")
        entries = [row[0] for row in rows]
        if not all(isinstance(entry, bytes) for entry in entries):
            raise AuditUnavailable(f"PostgreSQL audit store returned a non-bytea entry in "
                                   f"[{start}, {end})")
        return entries  # type: ignore[return-value]  # checked just above

    def save_checkpoint(self, size: int, note_text: str) -> None:
        with self._tx("save_checkpoint") as cur:
            stored = self._next_idx(cur)
            if not 0 <= size <= stored:
                raise InvalidArgument(FieldViolation("size", f"got {size}, want 0..{stored}"))
            cur.execute("INSERT INTO audit_checkpoints (size, note) VALUES (%s, %s)"
                        " ON CONFLICT (size) DO NOTHING", (size, note_text))

    def latest_checkpoint(self) -> tuple[int, str] | None:
        with self._tx("latest_checkpoint") as cur:
            cur.execute("SELECT size, note FROM audit_checkpoints ORDER BY size DESC LIMIT 1")
            row = cur.fetchone()
        return None if row is None else (_int(row[0]), str(row[1]))

    def read_indexed(self, start: int, end: int) -> list[tuple[int, bytes]]:
        """Rows with their stored indexes, as they are (no gap check): for the verifier."""
        with self._tx("read_indexed") as cur:
            cur.execute("SELECT idx, entry FROM audit_entries WHERE idx >= %s AND idx < %s"
                        " ORDER BY idx", (start, end))
            rows = cur.fetchall()
        return [(_int(i), bytes(e)) for i, e in rows]  # type: ignore[call-overload]

    def read_subject_set(self, index: int) -> bytes | None:
        with self._tx("read_subject_set") as cur:
            cur.execute("SELECT subjects FROM audit_subject_sets WHERE idx = %s", (index,))
            row = cur.fetchone()
        if row is None:
            return None
        if not isinstance(row[0], bytes):
            raise AuditUnavailable(f"PostgreSQL audit store returned a non-bytea subject set "
                                   f"at {index}")
        return row[0]

    def subject_set_indexes(self, start: int, end: int) -> list[int]:
        with self._tx("subject_set_indexes") as cur:
            cur.execute("SELECT idx FROM audit_subject_sets WHERE idx >= %s AND idx < %s"
                        " ORDER BY idx", (start, end))
            return [_int(r[0]) for r in cur.fetchall()]

    def checkpoint_sizes(self) -> list[int]:
        with self._tx("checkpoint_sizes") as cur:
            cur.execute("SELECT size FROM audit_checkpoints ORDER BY size")
            return [_int(r[0]) for r in cur.fetchall()]

    def checkpoint_at(self, size: int) -> str | None:
        with self._tx("checkpoint_at") as cur:
            cur.execute("SELECT note FROM audit_checkpoints WHERE size = %s", (size,))
            row = cur.fetchone()
        return None if row is None else str(row[0])

    def add_cosignature(self, size: int, witness_name: str, line: str) -> None:
        with self._tx("add_cosignature") as cur:
            cur.execute("SELECT 1 FROM audit_checkpoints WHERE size = %s", (size,))
            if cur.fetchone() is None:
                raise NotFound(f"no checkpoint at size {size} to cosign")
            cur.execute("INSERT INTO audit_cosignatures (size, witness, line) VALUES (%s, %s, %s)"
                        " ON CONFLICT (size, witness) DO UPDATE SET line = EXCLUDED.line",
                        (size, witness_name, line))

    def cosignatures(self, size: int) -> list[tuple[str, str]]:
        with self._tx("cosignatures") as cur:
            cur.execute("SELECT witness, line FROM audit_cosignatures WHERE size = %s"
                        " ORDER BY witness", (size,))
            rows = cur.fetchall()
        return [(str(w), str(line)) for w, line in rows]

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
