"""Real-estate registry: data access by configuration only (:class:`SqlSource`).

Without a ``[connectors.real-estate.sql]`` table the registry's export is read from the
``real_estate`` table of the section's ``database``, one column per field; a registry with
its own schema maps fields to columns or queries there instead.
"""

from __future__ import annotations

from connectors.real_estate.schema import SCHEMA
from connectors.sdk import DataSource, SourceConfig, SqlSource

__all__ = ["SCHEMA", "TABLE", "open_source"]

#: The default table: one row per person with any registration, keyed by ``person_id``.
TABLE = "real_estate"


def open_source(config: SourceConfig) -> DataSource:
    """The registry's DataSource for a connector's config section."""
    return SqlSource.from_config(SCHEMA, config, table=TABLE)
