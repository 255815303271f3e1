"""Social security bureau (人社): the connector plug-in (entry point ``pgw.connectors``
social-security)."""

from __future__ import annotations

from connectors.sdk import ConnectorPlugin, DataSource, SourceConfig
from connectors.social_security import source


def _open(config: SourceConfig) -> DataSource:
    return source.open_source(config.database)


PLUGIN = ConnectorPlugin(partner="social-security", schema=source.SCHEMA, open_source=_open,
                         database="social_security.db", table=source.TABLE)
