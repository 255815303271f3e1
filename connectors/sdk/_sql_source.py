"""A generic SQL :class:`DataSource`: a partner with a database needs configuration, not code.

SQLite (a file path or ``sqlite:///PATH``) and PostgreSQL (``postgresql://...``, through
psycopg) by DSN. Each schema field is either a column of one table keyed by subject, or a
query declared in configuration that returns ``(subject, value)`` rows::

    [connectors.real-estate.sql]
    dsn = "data/real_estate.db"            # default: the section's database
    table = "real_estate"                  # one row per subject the partner holds
    key_column = "person_id"
    columns = { mortgage_flag = "has_mortgage" }   # default: the field's own name

    [connectors.real-estate.sql.queries]
    properties_owned = '''SELECT owner_id, COUNT(*) FROM titles
                          WHERE owner_id IN (:subjects) GROUP BY owner_id'''

Only parameterised queries run: subjects always travel as bound parameters (the ``:subjects``
marker is replaced by one placeholder per subject), and table and column names must be plain
identifiers, which are quoted. Queries come from the operator's configuration, never from a
request; with PostgreSQL a literal ``%`` in one is written ``%%``.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from connectors.sdk._datasource import DataSource, Row
from connectors.sdk._plugin import SourceConfig
from connectors.sdk._schema import FieldType, Schema
from connectors.sdk._sqlite_pool import ConnectionPool
from gateway.errors import ConfigError

__all__ = ["SqlSource"]

CHUNK_SIZE = 500
MARKER = ":subjects"
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_CONFIG_KEYS = frozenset({"dsn", "table", "key_column", "columns", "queries"})
Decoder = Callable[[Any], Any]


def _float_list(raw: Any) -> list[float]:
    return [float(v) for v in (raw if isinstance(raw, (list, tuple)) else json.loads(raw))]


def _text(raw: Any) -> str:
    return raw.isoformat() if hasattr(raw, "isoformat") else str(raw)


_DECODERS: dict[FieldType, Decoder] = {
    FieldType.STRING: str, FieldType.INT: int, FieldType.FLOAT: float, FieldType.BOOL: bool,
    FieldType.DATE: _text, FieldType.MONTH: _text, FieldType.CODE: str,
    FieldType.FLOAT_LIST: _float_list,
}


def _quote(name: Any, what: str) -> str:
    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        raise ConfigError(f"{what}: got {name!r}, want a plain SQL identifier")
    return f'"{name}"'


class _Pool:
    """A few blocking DB-API connections (SQLite or PostgreSQL) shared by worker threads."""

    def __init__(self, dsn: str) -> None:
        self.postgres = dsn.startswith(("postgresql://", "postgres://"))
        if self.postgres:
            self.mark = "%s"
            self._dsn = dsn
        elif dsn.startswith("sqlite:///") or "://" not in dsn:
            self.mark = "?"
            path = Path(dsn.removeprefix("sqlite:///") if "://" in dsn else dsn)
            if dsn.startswith("sqlite:///") and not path.is_absolute():
                path = Path("/" + str(path))
            self._dsn = path.resolve().as_uri() + "?mode=ro"
        else:
            raise ConfigError(f"dsn: got scheme {dsn.split('://')[0]!r}, want sqlite or "
                              "postgresql")
        self._pool = ConnectionPool(self._connect)

    @property
    def closed(self) -> bool:
        return self._pool.closed

    def _connect(self) -> Any:
        if self.postgres:
            import psycopg  # optional dependency: pip install 'pgw[postgres]'

            conn = psycopg.connect(self._dsn, autocommit=True)
            conn.read_only = True
            return conn
        return sqlite3.connect(self._dsn, uri=True, check_same_thread=False)

    def run(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        if self.closed:
            raise RuntimeError("source is closed")
        with self._pool.borrow() as conn:
            return [tuple(r) for r in conn.execute(sql, list(params)).fetchall()]

    def close(self) -> None:
        self._pool.close()


class SqlSource(DataSource):
    """One partner's fields from a SQL database, as declared in configuration."""

    def __init__(self, schema: Schema, *, dsn: str, table: str, key_column: str = "person_id",
                 columns: Mapping[str, str] | None = None,
                 queries: Mapping[str, str] | None = None) -> None:
        self.schema = schema
        where = f"[connectors.{schema.partner}.sql]"
        queries, columns = dict(queries or {}), dict(columns or {})
        for name in [*columns, *queries]:
            if schema.field(name) is None:
                raise ConfigError(f"{where} {name}: not a field of {schema.partner}")
        both = sorted(set(columns) & set(queries))
        if both:
            raise ConfigError(f"{where} {', '.join(both)}: both a column and a query")
        self._table = _quote(table, f"{where} table")
        self._key = _quote(key_column, f"{where} key_column")
        self._columns = {f.name: _quote(columns.get(f.name, f.name), f"{where} columns.{f.name}")
                         for f in schema.fields if f.name not in queries}
        self._queries: dict[str, str] = {}
        for name, sql in queries.items():
            if (not isinstance(sql, str) or sql.count(MARKER) != 1 or ";" in sql
                    or not re.match(r"\s*(select|with)\b", sql, re.IGNORECASE)):
                raise ConfigError(f"{where} queries.{name}: want one SELECT statement "
                                  f"(no ';') containing {MARKER} exactly once")
            self._queries[name] = sql
        self._decoders = {f.name: _DECODERS[f.type] for f in schema.fields}
        self._pool = _Pool(dsn)
        probe = ", ".join([self._key, *self._columns.values()])
        try:  # fail fast on a missing database, table or column
            self._pool.run(f"SELECT {probe} FROM {self._table} WHERE 1 = 0", [])
            if not self._pool.postgres:  # SQLite reads an unknown "name" as a string literal
                have = {r[0] for r in self._pool.run(
                    "SELECT name FROM pragma_table_info(?)", [table])}
                missing = sorted({key_column, *(c.strip('"') for c in self._columns.values())}
                                 - have)
                if missing:
                    raise LookupError(f"no column(s) {', '.join(missing)}")
        except Exception as exc:  # noqa: BLE001 - any driver error at start-up: a config error
            self._pool.close()
            raise ConfigError(f"{where}: cannot read {table}: {exc}") from None

    @classmethod
    def from_config(cls, schema: Schema, config: SourceConfig, *,
                    table: str | None = None) -> SqlSource:
        """Build from a connector's config section (``[connectors.NAME.sql]``, optional)."""
        sql = dict(config.sql)
        unknown = sorted(set(sql) - _CONFIG_KEYS)
        if unknown:
            raise ConfigError(f"[connectors.{config.partner}.sql] unknown key(s): "
                              f"{', '.join(unknown)}")
        return cls(schema, dsn=str(sql.get("dsn", config.database)),
                   table=sql.get("table", table or schema.partner.replace("-", "_")),
                   key_column=sql.get("key_column", "person_id"),
                   columns=sql.get("columns"), queries=sql.get("queries"))

    def _check(self, fields: Sequence[str]) -> None:
        for name in fields:
            if name not in self._decoders:
                raise ValueError(f"unknown field {name!r} for partner {self.schema.partner}")

    async def fetch(self, subjects: Sequence[str], fields: Sequence[str]) -> list[Row | None]:
        """Rows for ``subjects`` in order; ``None`` for subjects absent from the table."""
        self._check(fields)
        return await asyncio.to_thread(self._fetch_sync, list(subjects), list(fields))

    def _marks(self, n: int) -> str:
        return ",".join([self._pool.mark] * n)

    def _fetch_sync(self, subjects: list[str], fields: list[str]) -> list[Row | None]:
        unique = list(dict.fromkeys(subjects))
        cols = [f for f in fields if f in self._columns]
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(unique), CHUNK_SIZE):
            chunk = unique[start:start + CHUNK_SIZE]
            select = ", ".join([self._key, *(self._columns[f] for f in cols)])
            sql = (f"SELECT {select} FROM {self._table} "
                   f"WHERE {self._key} IN ({self._marks(len(chunk))})")
            for key, *values in self._pool.run(sql, chunk):
                found[key] = {f: self._decode(f, v) for f, v in zip(cols, values, strict=True)}
            held = [s for s in chunk if s in found]
            for name in (f for f in fields if f in self._queries):
                for row in found.values():
                    row.setdefault(name, None)
                if not held:
                    continue
                sql = self._queries[name].replace(MARKER, self._marks(len(held)))
                seen: set[str] = set()
                for key, value in self._pool.run(sql, held):
                    if key in seen:
                        raise ValueError(f"query for {name} returned two rows for one subject")
                    seen.add(key)
                    if key in found:
                        found[key][name] = self._decode(name, value)
        return [None if s not in found else {f: found[s][f] for f in fields} for s in subjects]

    def _decode(self, field: str, value: Any) -> Any:
        return None if value is None else self._decoders[field](value)

    async def stream_column(self, field: str, where: Mapping[str, Any] | None = None
                            ) -> AsyncIterator[tuple[str, Any]]:
        """``(subject, value)`` in key order; ``where`` may name column fields only."""
        conditions = dict(where or {})
        self._check([field, *conditions])
        if any(k not in self._columns for k in conditions):
            raise ValueError("where may name column fields only, not query fields")
        sql = (f"SELECT {self._key} FROM {self._table} WHERE {self._key} > {self._pool.mark}"
               + "".join(f" AND {self._columns[k]} = {self._pool.mark}" for k in conditions)
               + f" ORDER BY {self._key} LIMIT {CHUNK_SIZE}")
        after = ""
        while True:
            page = await asyncio.to_thread(self._pool.run, sql, [after, *conditions.values()])
            keys = [k for (k,) in page]
            rows = await self.fetch(keys, [field])
            for key, row in zip(keys, rows, strict=True):
                yield key, None if row is None else row[field]
            if len(keys) < CHUNK_SIZE:
                return
            after = keys[-1]

    async def aclose(self) -> None:
        """Close the pooled connections; later reads raise ``RuntimeError``."""
        self._pool.close()
