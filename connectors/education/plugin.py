"""Education bureau (degree records): the connector plug-in (entry point ``pgw.connectors``
education)."""

from __future__ import annotations

from connectors.education import source
from connectors.sdk import ConnectorPlugin, DataSource, SourceConfig


def _open(config: SourceConfig) -> DataSource:
    return source.open_source(config.database)


PLUGIN = ConnectorPlugin(partner="education", schema=source.SCHEMA, open_source=_open,
                         database="education.db", table=source.TABLE)
