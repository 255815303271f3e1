"""The built-in partners: partner id -> its schema and DataSource factory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from connectors.sdk._datasource import DataSource
from connectors.sdk._schema import Schema


def _builtin() -> dict[str, tuple[Schema, Callable[[Path], DataSource]]]:
    from connectors.bank import schema as bank_schema, source as bank_source
    from connectors.education import schema as edu_schema, source as edu_source
    from connectors.social_security import schema as ss_schema, source as ss_source

    return {
        "social-security": (ss_schema.SCHEMA, ss_source.open_source),
        "education": (edu_schema.SCHEMA, edu_source.open_source),
        "bank": (bank_schema.SCHEMA, bank_source.open_source),
    }


def schemas() -> dict[str, Schema]:
    return {name: schema for name, (schema, _) in _builtin().items()}


def open_source(partner: str, database: Path) -> DataSource:
    try:
        _, factory = _builtin()[partner]
    except KeyError:
        raise ValueError(f"unknown partner {partner!r}; want one of "
                         f"{', '.join(sorted(_builtin()))}") from None
    return factory(database)
