"""Durable audit storage: the :class:`AuditStore` contract and helpers shared by the backends.

A store is a dumb, durable, append-only sequence of opaque entries (the encoded
:class:`~gateway.audit._entry.AuditEntry` bytes) plus the signed checkpoints and witness
cosignatures made over it. It knows nothing about Merkle trees; the
:class:`~gateway.audit._log.AuditLog` hashes what the store returns.

Contract every backend keeps:

* ``create`` fixes the hash profile (hash name and origin) when the log is first made; opening
  an existing log with another profile raises :class:`~gateway.errors.ConfigError`.
* ``append_batch`` writes a whole batch in ONE durable transaction and returns the index of its
  first entry. Indexes are dense (0..n-1) and allocated inside that transaction under a lock,
  so several processes sharing one store never reuse or skip an index. A failed batch leaves
  nothing behind.
* Bulk subject sets (:mod:`gateway.audit._subject_set`) given with a batch are written in that
  same transaction, each under its entry's index: an entry is never committed without its set,
  nor a set without its entry. They are opaque BLOBs here; the entry's digest binds them, and
  the offline verifier checks it.
* Methods are synchronous and thread-safe; the log calls them through ``asyncio.to_thread``.
* Backend errors (``sqlite3.Error``, ``psycopg.Error``) are converted where they enter into
  :class:`~gateway.errors.AuditUnavailable`, so callers fail closed on one error type.

Backends: :mod:`gateway.audit._store_sqlite` (embedded default, WAL + ``synchronous=FULL``) and
:mod:`gateway.audit._store_pg` (several gateway replicas on one PostgreSQL database).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Protocol, runtime_checkable

from gateway.errors import AuditUnavailable, ConfigError, FieldViolation, InvalidArgument

__all__ = ["AuditStore", "check_profile", "check_range", "iter_entries", "open_store",
           "subject_set_rows"]

#: Rows fetched per round trip when a caller walks the whole log.
READ_CHUNK = 10_000


@runtime_checkable
class AuditStore(Protocol):
    """Durable, append-only storage for one audit log (see the module docstring)."""

    def create(self, hash_name: str, origin: str) -> None:
        """Fix the log's hash profile, or check it against the stored one (ConfigError)."""

    def profile(self) -> tuple[str, str] | None:
        """The stored ``(hash_name, origin)``, or None before :meth:`create`."""

    def append_batch(self, entries: list[bytes],
                     subject_sets: Mapping[int, bytes] | None = None) -> int:
        """Append ``entries`` atomically and durably; return the index of the first one.

        ``subject_sets`` maps an offset into ``entries`` to that entry's subject set, stored
        in the same transaction under the entry's index (``first + offset``)."""

    def read_subject_set(self, index: int) -> bytes | None:
        """The subject set stored for entry ``index``, or None if there is none."""

    def subject_set_indexes(self, start: int, end: int) -> list[int]:
        """Indexes in ``[start, end)`` that have a stored subject set, ascending."""
        ...

    def size(self) -> int:
        """Number of committed entries."""

    def read(self, start: int, end: int) -> list[bytes]:
        """Entries ``start`` (inclusive) to ``end`` (exclusive), in index order."""

    def read_indexed(self, start: int, end: int) -> list[tuple[int, bytes]]:
        """``(index, entry)`` rows in ``[start, end)`` as stored, without a gap check."""
        ...

    def checkpoint_sizes(self) -> list[int]:
        """Sizes of all stored checkpoints, ascending."""
        ...

    def save_checkpoint(self, size: int, note_text: str) -> None:
        """Keep a signed checkpoint note for tree size ``size`` (first one per size wins)."""

    def latest_checkpoint(self) -> tuple[int, str] | None:
        """The checkpoint with the largest size as ``(size, note_text)``, or None."""

    def checkpoint_at(self, size: int) -> str | None:
        """The checkpoint note stored for exactly ``size``, or None."""

    def add_cosignature(self, size: int, witness_name: str, line: str) -> None:
        """Record (or replace) one witness's cosignature line on checkpoint ``size``."""

    def cosignatures(self, size: int) -> list[tuple[str, str]]:
        """``(witness_name, line)`` pairs for checkpoint ``size``, sorted by witness name."""

    def close(self) -> None:
        """Release connections; the store must not be used afterwards."""


def open_store(dsn: str) -> AuditStore:
    """Open the store named by ``dsn``, picking the backend from its scheme.

    ``postgresql://...`` or ``postgres://...`` selects PostgreSQL (psycopg 3); ``sqlite:///abs/path.db``
    or a plain filesystem path selects SQLite. Tables are created if absent; call
    :meth:`AuditStore.create` before appending.
    """
    if dsn.startswith(("postgresql://", "postgres://")):
        from gateway.audit._store_pg import PostgresAuditStore

        return PostgresAuditStore(dsn)
    if dsn.startswith("sqlite://"):
        path = dsn.removeprefix("sqlite://")
        if not path:
            raise ConfigError(f"audit store DSN {dsn!r}: want sqlite:///absolute/path.db")
    elif "://" in dsn:
        scheme = dsn.split("://", 1)[0]
        raise ConfigError(f"audit store DSN scheme {scheme!r}: want postgresql, sqlite or a path")
    else:
        path = dsn
    from gateway.audit._store_sqlite import SqliteAuditStore

    return SqliteAuditStore(path)


def check_profile(stored: tuple[str, str] | None, hash_name: str, origin: str) -> bool:
    """Compare a stored profile with the requested one.

    Returns True when nothing is stored yet (the caller should write it), False when it matches,
    and raises :class:`ConfigError` in got/want form when it differs.
    """
    if stored is None:
        return True
    got_hash, got_origin = stored
    if got_hash != hash_name:
        raise ConfigError(
            f"audit log hash profile mismatch: the store was created with {got_hash!r}, "
            f"got a request to open it with {hash_name!r}; a log's hash is fixed at creation")
    if got_origin != origin:
        raise ConfigError(
            f"audit log origin mismatch: the store was created for {got_origin!r}, "
            f"got {origin!r}")
    return False


def check_range(start: int, end: int, size: int) -> None:
    """Raise :class:`InvalidArgument` unless ``0 <= start <= end <= size``."""
    if start < 0:
        raise InvalidArgument(FieldViolation("start", f"got {start}, want >= 0"))
    if end < start or end > size:
        raise InvalidArgument(FieldViolation("end", f"got {end}, want {start} <= end <= {size}"))


def subject_set_rows(first: int, count: int,
                     subject_sets: Mapping[int, bytes] | None) -> list[tuple[int, bytes]]:
    """``(index, set)`` rows of a batch of ``count`` entries starting at ``first``, in index
    order; raises ValueError for an offset outside the batch or a set that is not bytes."""
    rows = []
    for offset, blob in sorted((subject_sets or {}).items()):
        if not 0 <= offset < count or not isinstance(blob, bytes):
            raise ValueError(f"subject set at batch offset {offset!r} ({type(blob).__name__}): "
                             f"want bytes for an offset in 0..{count - 1}")
        rows.append((first + offset, blob))
    return rows


def iter_entries(store: AuditStore, start: int = 0, end: int | None = None,
                 chunk: int = READ_CHUNK) -> Iterator[tuple[int, bytes]]:
    """Yield ``(index, entry)`` from ``start`` to ``end`` (default: the current size) in chunks,
    so a verifier can walk millions of entries without holding them all in memory."""
    stop = store.size() if end is None else end
    index = start
    while index < stop:
        upper = min(index + chunk, stop)
        entries = store.read(index, upper)
        if len(entries) != upper - index:
            raise AuditUnavailable(f"audit store returned {len(entries)} entries for "
                                   f"[{index}, {upper}): want {upper - index}, the log has a gap")
        for entry in entries:
            yield index, entry
            index += 1
