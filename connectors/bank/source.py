"""Bank (payroll, income, credit): the DataSource over its local SQLite database."""

from __future__ import annotations

from pathlib import Path

from connectors.bank.schema import SCHEMA
from connectors.sdk._sqlite_source import SqliteSource

__all__ = ["SCHEMA", "TABLE", "open_source"]

#: The table holding one row per person, keyed by ``person_id``.
TABLE = "bank"


def open_source(db_path: str | Path) -> SqliteSource:
    """Open ``db_path`` read-only as this partner's DataSource."""
    return SqliteSource(SCHEMA, db_path, TABLE)
