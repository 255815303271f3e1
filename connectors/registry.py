"""The installed partners, found by entry point (group ``pgw.connectors``).

Nothing here names a partner: the built-ins register themselves in ``pyproject.toml`` like any
third-party package. The built-ins keep their historical order (and so their ports in a
``pgw init`` config); other partners follow in name order.
"""

from __future__ import annotations

from pathlib import Path

from connectors.sdk._datasource import DataSource
from connectors.sdk._plugin import ConnectorPlugin, SourceConfig, discover_plugins
from connectors.sdk._schema import Schema

_FIRST = ("social-security", "education", "bank")


def plugins() -> dict[str, ConnectorPlugin]:
    """Partner id -> validated plug-in, built-ins first."""
    found = discover_plugins()
    order = sorted(found, key=lambda p: (_FIRST.index(p) if p in _FIRST else len(_FIRST), p))
    return {p: found[p] for p in order}


def partners() -> tuple[str, ...]:
    return tuple(plugins())


def plugin(partner: str) -> ConnectorPlugin:
    found = plugins()
    try:
        return found[partner]
    except KeyError:
        raise ValueError(f"unknown partner {partner!r}; want one of "
                         f"{', '.join(found)}") from None


def schemas() -> dict[str, Schema]:
    return {name: p.schema for name, p in plugins().items()}


def open_source(partner: str, config: SourceConfig | Path) -> DataSource:
    """Open ``partner``'s DataSource; a bare path is its database with no further settings."""
    if not isinstance(config, SourceConfig):
        config = SourceConfig(partner=partner, database=Path(config))
    return plugin(partner).open_source(config)
