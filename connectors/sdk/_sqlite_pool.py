"""Read-only connections to one SQLite file, shared by the worker threads that read it.

A source's reads run in worker threads (``asyncio.to_thread``); each borrows an idle
connection (or opens one when all are busy) and returns it, so a burst of reads does not
reopen the file per call. One more connection, never used for reads, answers
``PRAGMA data_version``: its value changes whenever any other connection, of any process,
commits to the file, which is what tells the column cache that a scanned column is stale.
"""

from __future__ import annotations

import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

__all__ = ["ConnectionPool", "ReadPool"]


class ConnectionPool:
    """Idle DB-API connections made by ``connect``, borrowed by worker threads and returned
    (one is opened when all are busy, so a burst of reads never waits for another)."""

    def __init__(self, connect: Callable[[], Any]) -> None:
        self._connect = connect
        self._idle: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.closed = False

    def give(self, conn: Any) -> None:
        """Add an open connection to the idle ones."""
        self._idle.put(conn)

    @contextlib.contextmanager
    def borrow(self) -> Iterator[Any]:
        """A pooled connection (a new one when all are busy), returned or closed after."""
        try:
            conn = self._idle.get_nowait()
        except queue.Empty:
            conn = self._connect()
        try:
            yield conn
        finally:
            if self.closed:
                conn.close()
            else:
                self._idle.put(conn)

    def close(self) -> None:
        """Close every idle connection; borrowed ones close when returned."""
        self.closed = True
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


class ReadPool(ConnectionPool):
    """Read-only connections to the SQLite file at ``db_path`` (opened ``mode=ro``)."""

    def __init__(self, db_path: str | Path) -> None:
        self.uri = Path(db_path).resolve().as_uri() + "?mode=ro"
        super().__init__(self.connect)
        self._watch, self._watch_lock = self.connect(), threading.Lock()

    def connect(self) -> sqlite3.Connection:
        """A new connection (raises ``sqlite3.Error`` for a missing or unreadable file)."""
        return sqlite3.connect(self.uri, uri=True, check_same_thread=False)

    def page(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        """All rows of one query."""
        with self.borrow() as conn:
            return conn.execute(sql, params).fetchall()  # type: ignore[no-any-return]

    def data_version(self) -> int:
        """Changes whenever another connection (of any process) commits to the file."""
        with self._watch_lock:
            return int(self._watch.execute("PRAGMA data_version").fetchone()[0])

    def close(self) -> None:
        """Close the watch connection and every idle one; borrowed ones close when returned."""
        with self._watch_lock:
            self._watch.close()
        super().close()
