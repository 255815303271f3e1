"""Connector plug-ins: how a partner package tells pgw about itself.

A package declares one entry point per partner in the group ``pgw.connectors``, naming a
:class:`ConnectorPlugin`::

    [project.entry-points."pgw.connectors"]
    real-estate = "connectors.real_estate:PLUGIN"

The gateway (catalogues, config validation), ``pgw init`` (config sections, synthetic data) and
``pgw connector serve`` find partners only through :func:`discover_plugins`. Every plugin is
validated when it is loaded: a bad one stops start-up with a :class:`PluginError` naming the
entry point and what is wrong with it.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol

from connectors.sdk._datasource import DataSource
from connectors.sdk._schema import Schema
from gateway.errors import ConfigError

ENTRY_POINT_GROUP = "pgw.connectors"
_PARTNER_ID = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*\Z")


class PluginError(ConfigError):
    """A connector plug-in cannot be used; the message names the entry point and the reason."""


@dataclass(frozen=True)
class SourceConfig:
    """What a connector's ``[connectors.NAME]`` section tells its DataSource factory.

    ``database`` is the section's ``database`` path; ``sql`` is its ``[connectors.NAME.sql]``
    table (empty when absent), read by :class:`~connectors.sdk.SqlSource`.
    """

    partner: str
    database: Path
    sql: Mapping[str, Any] = field(default_factory=dict)


class SyntheticPerson(Protocol):
    """The latent facts about one synthetic person a plug-in's data hook may read."""

    person_id: str
    birth_year: int
    income: float       # typical monthly pay in CNY
    degree: int         # 0 none, 1 associate, 2 bachelor, 3 master, 4 doctor


#: ``synthesize(people, rng)``: one ``(person_id, *values in schema field order)`` tuple per
#: person the partner holds a record for. Deterministic in ``rng``.
Synthesizer = Callable[[Sequence[SyntheticPerson], random.Random], Iterable[tuple[Any, ...]]]


@dataclass(frozen=True)
class ConnectorPlugin:
    """One partner: its id, its catalogue, how to open its data, and optional synthetic data.

    ``database`` and ``table`` are where ``pgw init`` writes synthetic rows (defaults: the
    partner id with ``_`` for ``-``, plus ``.db`` for the file).
    """

    partner: str
    schema: Schema
    open_source: Callable[[SourceConfig], DataSource]
    synthesize: Synthesizer | None = None
    database: str = ""
    table: str = ""

    @property
    def database_name(self) -> str:
        return self.database or self.partner.replace("-", "_") + ".db"

    @property
    def table_name(self) -> str:
        return self.table or self.partner.replace("-", "_")


def check_plugin(name: str, obj: Any, where: str = "") -> ConnectorPlugin:
    """``obj`` if it is a usable plug-in registered as ``name``; else :class:`PluginError`."""
    label = f"connector plugin {name!r}" + (f" ({where})" if where else "")
    if not isinstance(obj, ConnectorPlugin):
        raise PluginError(f"{label}: got a {type(obj).__name__}, want a "
                          "connectors.sdk.ConnectorPlugin")
    problems = []
    if not isinstance(obj.partner, str) or not _PARTNER_ID.match(obj.partner):
        problems.append(f"partner: got {obj.partner!r}, want a lowercase-hyphenated id")
    elif obj.partner != name:
        problems.append(f"partner: got {obj.partner!r}, want the entry point name {name!r}")
    if not isinstance(obj.schema, Schema):
        problems.append(f"schema: got a {type(obj.schema).__name__}, want a Schema")
    elif obj.schema.partner != obj.partner:
        problems.append(f"schema.partner: got {obj.schema.partner!r}, want {obj.partner!r}")
    elif not obj.schema.fields:
        problems.append("schema.fields: missing (a partner publishes at least one field)")
    if not callable(obj.open_source):
        problems.append("open_source: missing (want a callable SourceConfig -> DataSource)")
    if obj.synthesize is not None and not callable(obj.synthesize):
        problems.append("synthesize: got a non-callable, want None or a callable")
    if problems:
        raise PluginError(f"{label}: " + "; ".join(problems))
    return obj


class _EntryPoint(Protocol):
    name: str
    value: str

    def load(self) -> Any: ...


def load_plugins(eps: Iterable[_EntryPoint]) -> dict[str, ConnectorPlugin]:
    """Load and validate ``eps``; partner id -> plug-in, in entry point name order."""
    out: dict[str, ConnectorPlugin] = {}
    for ep in sorted(eps, key=lambda e: e.name):
        try:
            obj = ep.load()
        except Exception as exc:  # noqa: BLE001 - any import failure names the plug-in
            raise PluginError(f"connector plugin {ep.name!r} ({ep.value}): cannot be loaded: "
                              f"{type(exc).__name__}: {exc}") from exc
        plugin = check_plugin(ep.name, obj, ep.value)
        if plugin.partner in out:
            raise PluginError(f"connector plugin {ep.name!r} ({ep.value}): partner "
                              f"{plugin.partner!r} is registered twice")
        out[plugin.partner] = plugin
    return out


@lru_cache(maxsize=1)
def discover_plugins() -> Mapping[str, ConnectorPlugin]:
    """Every installed plug-in (entry point group ``pgw.connectors``), validated, cached."""
    return load_plugins(entry_points(group=ENTRY_POINT_GROUP))
