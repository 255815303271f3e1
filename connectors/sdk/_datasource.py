"""The one plug-in point a connector author implements: a :class:`DataSource`."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from connectors.sdk._column_read import ColumnRead, FetchWhenAsked
from connectors.sdk._schema import Schema

if TYPE_CHECKING:
    import numpy as np

#: One row: field name -> raw value (str, int, float, bool, list[float] or None).
Row = Mapping[str, Any]


class DataSource(abc.ABC):
    """Reads raw rows from a partner's own store. It never sees policy or transforms:
    the connector server decides what may be read and transforms what leaves."""

    schema: Schema

    @abc.abstractmethod
    async def fetch(self, subjects: Sequence[str], fields: Sequence[str]) -> list[Row | None]:
        """Rows for ``subjects`` (normalised GB 11643 ids), in the same order; ``None``
        where the partner holds no record. Each row holds exactly ``fields``."""

    async def fetch_column(self, subjects: Sequence[str], field: str) -> list[Any]:
        """The raw value of ``field`` for each subject, in order; ``None`` where the partner
        holds no record or no value: the input of encrypting one column for compute.
        The default reads it through :meth:`fetch`; a source may do it in one pass."""
        rows = await self.fetch(subjects, [field])
        return [None if row is None else row.get(field) for row in rows]

    async def fetch_values(self, ids: bytes, field: str) -> tuple[np.ndarray, np.ndarray]:
        """(float64 values, 0.0 where missing; bool found) of a numeric field for each packed
        id (:mod:`gateway.packed_ids` form: validated, normalised), in order: the input of
        encrypting one column for compute. A present value is converted with ``float()``;
        one that does not convert raises ``ValueError`` naming the field. The same as
        :meth:`start_values` then ``values(ids)``."""
        from gateway.packed_ids import WIDTH  # local: numpy loads where compute runs only

        read = await self.start_values(field, len(ids) // WIDTH)
        try:
            return await read.values(ids)
        finally:
            read.close()

    async def start_values(self, field: str, count: int) -> ColumnRead:
        """Start reading numeric ``field`` for ``count`` ids that will follow (see
        :mod:`connectors.sdk._column_read`). The default reads through :meth:`fetch_column`
        when the ids come; a source may scan ahead."""
        return FetchWhenAsked(self, field)

    async def stream_column(self, field: str, where: Mapping[str, Any] | None = None
                            ) -> AsyncIterator[tuple[str, Any]]:
        """``(subject, raw value of field)`` for every subject the partner holds whose row
        equals ``where`` on each named field, in a stable order: the input of private joins
        and of encrypting a whole column. Optional: the default raises NotImplementedError."""
        raise NotImplementedError(f"{type(self).__name__} cannot stream a column")
        yield  # pragma: no cover - makes this an async generator

    async def aclose(self) -> None:  # noqa: B027 - optional hook, default no-op
        """Release connections."""


class InMemorySource(DataSource):
    """A DataSource over a dict: the unit-test seam."""

    def __init__(self, schema: Schema, rows: Mapping[str, Row]) -> None:
        self.schema = schema
        self._rows = dict(rows)

    async def fetch(self, subjects: Sequence[str], fields: Sequence[str]) -> list[Row | None]:
        out: list[Row | None] = []
        for subject in subjects:
            row = self._rows.get(subject)
            out.append(None if row is None else {f: row.get(f) for f in fields})
        return out

    async def stream_column(self, field: str, where: Mapping[str, Any] | None = None
                            ) -> AsyncIterator[tuple[str, Any]]:
        conditions = dict(where or {})
        for subject in sorted(self._rows):
            row = self._rows[subject]
            if all(row.get(k) == v for k, v in conditions.items()):
                yield subject, row.get(field)
