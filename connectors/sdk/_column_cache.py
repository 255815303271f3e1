"""Scanned columns kept between reads for as long as the database has not changed.

A connector serving encrypted computes over most of its table (a nightly scoring run over all
applicants, repeated cohort statistics) would otherwise scan the same column on every call:
1.3 M rows cost about a second of CPU, more than encrypting them. ``SqliteSource`` keeps the
:class:`~connectors.sdk._sqlite_columns.ColumnIndex` of each scanned column here and reuses it
while the file is unchanged.

Validity: a token taken *before* the scan starts, compared on every use. The source makes it
from SQLite's ``PRAGMA data_version`` on a connection of its own, which changes whenever any
other connection, of any process, commits to the file. A commit during the scan therefore
makes the entry stale at once: the next read scans again. Nothing is kept by time, so a change
is never served late. (A file replaced by rename is not a commit: like the source's pooled
connections, the cache keeps reading the file it opened; restart the connector.)

Bounded by bytes (17 per row), least recently used out first; a column larger than the bound
is not kept. The index holds the partner's own column, in the partner's own process, as the
scan itself did; no value leaves through it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from connectors.sdk._sqlite_columns import ColumnIndex

__all__ = ["DEFAULT_CACHE_BYTES", "ColumnCache"]

#: Default bound: about 15 M rows of one column, or 3 columns of a 5 M-row table.
DEFAULT_CACHE_BYTES = 256 * 2**20


class ColumnCache:
    """Column indexes by field, each valid under the token it was built under. Thread-safe:
    reads and scans run in worker threads."""

    def __init__(self, version: Callable[[], Hashable], max_bytes: int = DEFAULT_CACHE_BYTES
                 ) -> None:
        if max_bytes < 0:
            raise ValueError(f"column cache bound: got {max_bytes} bytes, want >= 0")
        self._version, self.max_bytes = version, max_bytes
        self._entries: OrderedDict[str, tuple[Hashable, ColumnIndex]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def token(self) -> Hashable:
        """The database's version now: take it before a scan, pass it to :meth:`put`."""
        return self._version()

    def get(self, field: str, token: Hashable) -> ColumnIndex | None:
        """The index of ``field`` if it was built under ``token`` (the version now)."""
        with self._lock:
            held = self._entries.get(field)
            if held is None or held[0] != token:
                if held is not None:
                    del self._entries[field]  # stale: the file changed since its scan
                self.misses += 1
                return None
            self._entries.move_to_end(field)
            self.hits += 1
            return held[1]

    def put(self, field: str, token: Hashable, index: ColumnIndex) -> None:
        """Keep ``index`` (scanned under ``token``), dropping the least recently used."""
        size = index.nbytes
        with self._lock:
            self._entries.pop(field, None)
            if size > self.max_bytes:
                return
            while self._entries and self.nbytes + size > self.max_bytes:
                self._entries.popitem(last=False)
            self._entries[field] = (token, index)

    @property
    def nbytes(self) -> int:
        return sum(index.nbytes for _, index in self._entries.values())

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
