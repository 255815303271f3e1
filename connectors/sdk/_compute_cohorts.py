"""Cohort reads for the connector's ``Aggregate``: the :class:`CohortSource` seam, a read-only
SQLite implementation, and finding one behind a connector's DataSource."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from connectors.sdk._schema import Schema
from connectors.sdk._sqlite_source import SqliteSource


@runtime_checkable
class CohortSource(Protocol):
    """Selects a cohort by one of the partner's own attributes."""

    async def cohort_values(self, field: str, attribute: str, value: str) -> list[Any]:
        """``field`` of every person whose ``attribute`` equals ``value`` (None if unset)."""


class SqliteCohortSource:
    """Cohort reads over a partner's SQLite table, opened read-only; one parameterised query.

    Field and attribute names are checked against the schema and the table, and quoted; the
    cohort value is always a bound parameter.
    """

    def __init__(self, schema: Schema, db_uri: str, table: str) -> None:
        self.schema = schema
        self._uri = db_uri if db_uri.startswith("file:") else (
            Path(db_uri).resolve().as_uri() + "?mode=ro")
        if not self._uri.endswith("?mode=ro"):
            raise ValueError("cohort source: want a read-only file: URI (?mode=ro)")
        self._table = table if table.startswith('"') else f'"{table}"'
        with self._connect() as conn:
            self._columns = {r[1] for r in conn.execute(f"PRAGMA table_info({self._table})")}

    @classmethod
    def from_source(cls, source: SqliteSource) -> SqliteCohortSource:
        """Over the same database and table as the connector's own SqliteSource."""
        return cls(source.schema, source._pool.uri, source._table)  # same package: read-only URI

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self._uri, uri=True, check_same_thread=False)

    def _name(self, name: str) -> str:
        if self.schema.field(name) is None or name not in self._columns:
            raise ValueError(f"cohort source: got column {name!r}, want a catalogue field")
        return f'"{name}"'

    async def cohort_values(self, field: str, attribute: str, value: str) -> list[Any]:
        sql = (f"SELECT {self._name(field)} FROM {self._table} "
               f"WHERE {self._name(attribute)} = ?")
        return await asyncio.to_thread(self._read, sql, value)

    def _read(self, sql: str, value: str) -> list[Any]:
        conn = self._connect()
        try:
            return [r[0] for r in conn.execute(sql, (value,))]
        finally:
            conn.close()


def cohort_source_for(source: Any) -> CohortSource | None:
    """The cohort source a DataSource is or wraps (``inner`` / ``_inner``), if any."""
    if isinstance(source, CohortSource):
        return source
    if isinstance(source, SqliteSource):
        return SqliteCohortSource.from_source(source)
    inner = getattr(source, "inner", None) or getattr(source, "_inner", None)
    return cohort_source_for(inner) if inner is not None else None
