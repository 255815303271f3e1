"""The partner's set of people for joins: the :class:`JoinSet` seam, its SQLite reader, and the
distinct, shuffled items a job sends.

The set is what the agreement's ``where`` selects (never the spec's): distinct person ids and,
for intersection-sum, one value column. Column names are checked against the schema and the
table before they are quoted; values are bound parameters.
"""

from __future__ import annotations

import abc
import asyncio
import importlib
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from connectors.sdk._join_wire import items_of
from connectors.sdk._schema import Schema
from gateway.errors import PermissionDenied
from gateway.privacy import PackedItems, shuffle


class JoinSet(abc.ABC):
    """The partner's people for joins: ids (and a value) of the rows matching ``where``."""

    @abc.abstractmethod
    async def members(self, where: Sequence[tuple[str, Any]],
                      value_field: str | None) -> list[tuple[str, float]]:
        """(person id, value or 0.0) for each distinct person whose row matches ``where``."""


class InMemoryJoinSet(JoinSet):
    """Rows in a dict: the unit-test seam."""

    def __init__(self, rows: Mapping[str, Mapping[str, Any]]) -> None:
        self._rows = {k: dict(v) for k, v in rows.items()}

    async def members(self, where: Sequence[tuple[str, Any]],
                      value_field: str | None) -> list[tuple[str, float]]:
        return [(pid, float(row.get(value_field) or 0.0) if value_field else 0.0)
                for pid, row in self._rows.items()
                if all(row.get(k) == v for k, v in where)]


class SqliteJoinSet(JoinSet):
    """The partner's SQLite table, opened read-only, one parameterised query per job.

    Column names come from the agreement (checked against the schema at load) and are checked
    again here against the schema and the table, then quoted; values are bound parameters.
    """

    def __init__(self, db_path: str | Path, table: str, schema: Schema,
                 key_column: str = "person_id") -> None:
        self._uri = Path(db_path).resolve().as_uri() + "?mode=ro"
        self._table, self._key, self._schema = table, key_column, schema
        conn = sqlite3.connect(self._uri, uri=True)
        try:
            self._columns = {r[0] for r in conn.execute(
                "SELECT name FROM pragma_table_info(?)", (table,))}
        finally:
            conn.close()
        if key_column not in self._columns:
            raise ValueError(f"table {table!r} lacks the key column {key_column!r}")

    def _column(self, name: str) -> str:
        if name not in self._schema.names or name not in self._columns:
            raise PermissionDenied("join set names a column outside the catalogue",
                                   reason=f"join column {name!r} not in schema or table")
        return '"' + name.replace('"', '""') + '"'

    def _read(self, where: Sequence[tuple[str, Any]], value_field: str | None
              ) -> list[tuple[str, float]]:
        cols = [self._column(k) for k, _ in where]
        value = self._column(value_field) if value_field else "0.0"
        sql = (f'SELECT "{self._key}", {value} FROM "{self._table}"'
               + (" WHERE " + " AND ".join(f"{c} = ?" for c in cols) if cols else ""))
        conn = sqlite3.connect(self._uri, uri=True)
        try:
            return [(pid, float(v or 0.0))
                    for pid, v in conn.execute(sql, [v for _, v in where])]
        finally:
            conn.close()

    async def members(self, where: Sequence[tuple[str, Any]],
                      value_field: str | None) -> list[tuple[str, float]]:
        return await asyncio.to_thread(self._read, where, value_field)


def open_join_set(partner: str, db_path: str | Path, schema: Schema) -> SqliteJoinSet | None:
    """The partner's join set over its SQLite database, or None when no table is known.

    The table comes from the partner's plug-in (``table``) or its ``source.TABLE``.
    """
    table = None
    try:
        from connectors import registry

        table = getattr(registry.plugin(partner), "table", None)  # type: ignore[attr-defined]
    except (AttributeError, ValueError, ImportError):
        pass
    if table is None:
        try:
            module = importlib.import_module(f"connectors.{partner.replace('-', '_')}.source")
            table = module.TABLE
        except (ImportError, AttributeError):
            return None
    return SqliteJoinSet(db_path, table, schema)


def distinct_shuffled(members: list[tuple[str, float]],
                       with_values: bool) -> tuple[Sequence[bytes], list[float]]:
    """The distinct ids as items in a random order (OS CSPRNG); with ``with_values`` the
    values of a repeated id added up, in the same order (else no values)."""
    if with_values:
        totals: dict[str, float] = {}
        for pid, value in members:
            totals[pid] = totals.get(pid, 0.0) + value
        pairs = shuffle(list(totals.items()))
        return items_of([pid for pid, _ in pairs]), [v for _, v in pairs]
    ids = [pid for pid, _ in members]
    if len(set(ids)) != len(ids):  # a set is 3x faster than dict.fromkeys; repeats are rare
        ids = list(dict.fromkeys(ids))
    items = items_of(ids)
    return (items.shuffled() if isinstance(items, PackedItems) else shuffle(items)), []
