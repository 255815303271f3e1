"""The one plug-in point a connector author implements: a :class:`DataSource`."""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from typing import Any

from connectors.sdk._schema import Schema

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
