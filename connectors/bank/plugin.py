"""Bank (payroll, income, credit): the connector plug-in (entry point ``pgw.connectors`` bank)."""

from __future__ import annotations

from connectors.bank import source
from connectors.sdk import ConnectorPlugin, DataSource, SourceConfig


def _open(config: SourceConfig) -> DataSource:
    return source.open_source(config.database)


PLUGIN = ConnectorPlugin(partner="bank", schema=source.SCHEMA, open_source=_open,
                         database="bank.db", table=source.TABLE)
