"""A numeric column read in two steps, so that a source can start reading before the ids come.

``Encrypt`` learns from the signed spec how many subjects will follow (up to 2^21) before the
ids themselves arrive, are hashed and validated. A source that reads a large share of its
table by one scan (``SqliteSource``) can do that scan meanwhile and only look the ids up once
they are there; the default waits for the ids and reads through ``fetch_column``.
"""

from __future__ import annotations

import abc
import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from connectors.sdk._datasource import DataSource
    from connectors.sdk._sqlite_columns import ColumnIndex

__all__ = ["ColumnRead", "FetchWhenAsked", "ScannedColumn"]


class ColumnRead(abc.ABC):
    """One started read of a numeric field: :meth:`values` (again for other ids if need
    be), then :meth:`close`."""

    @abc.abstractmethod
    async def values(self, ids: bytes) -> tuple[np.ndarray, np.ndarray]:
        """(float64 values, 0.0 where missing; found) for each packed id, in order."""

    def close(self) -> None:  # noqa: B027 - optional hook, default no-op
        """Drop whatever was read ahead (also when :meth:`values` was never called)."""


class FetchWhenAsked(ColumnRead):
    """The default: nothing ahead; the ids go through ``fetch_column``."""

    def __init__(self, source: DataSource, field: str) -> None:
        self._source, self._field = source, field

    async def values(self, ids: bytes) -> tuple[np.ndarray, np.ndarray]:
        # local: numpy and the HE module load only where compute runs, not with the SDK
        from connectors.sdk._compute_he import column_values
        from gateway.packed_ids import unpack_ids

        raw = await self._source.fetch_column(unpack_ids(ids), self._field)
        return column_values(raw, self._field)


class ScannedColumn(ColumnRead):
    """A column index being scanned (or taken from the source's cache) in a worker thread;
    :meth:`values` looks the ids up in it (``_sqlite_columns.ColumnIndex``), also in a
    thread."""

    def __init__(self, scan: asyncio.Future[ColumnIndex]) -> None:
        self._scan = scan

    async def values(self, ids: bytes) -> tuple[np.ndarray, np.ndarray]:
        index = await self._scan
        return await asyncio.to_thread(index.lookup, ids)

    def close(self) -> None:
        self._scan.cancel()  # the thread finishes its scan; its arrays are dropped
