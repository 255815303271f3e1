"""The public connector SDK: what a connector author needs, and nothing else.

A connector author writes data access only:

* :class:`DataSource` (``fetch`` rows for subjects and fields, ``stream_column`` for joins and
  encryption, ``aclose``), or no code at all with :class:`SqlSource` and configuration;
* a :class:`Schema` of :class:`FieldSpec` (name, :class:`FieldType`, :class:`Sensitivity`);
* a :class:`ConnectorPlugin` registered under the entry point group ``pgw.connectors``.

:class:`ConnectorService` and :func:`start_connector` wrap any DataSource with spec
verification (:class:`SpecVerifier`), the partner's own agreement check, transforms, encryption,
blinding and witnessing. :func:`check_connector` is the conformance battery, and
:mod:`connectors.sdk.testing` holds helpers for a connector's own tests.
"""

from typing import TYPE_CHECKING, Any

from connectors.sdk._column_read import ColumnRead
from connectors.sdk._datasource import DataSource, InMemorySource, Row
from connectors.sdk._plugin import (
    ENTRY_POINT_GROUP,
    ConnectorPlugin,
    PluginError,
    SourceConfig,
    SyntheticPerson,
    check_plugin,
    discover_plugins,
)
from connectors.sdk._schema import FieldSpec, FieldType, Schema, Sensitivity
from connectors.sdk._sql_source import SqlSource
from connectors.sdk._sqlite_source import SqliteSource

if TYPE_CHECKING:
    from connectors.sdk._conformance import CheckResult, check_connector, render_report
    from connectors.sdk._server import ConnectorService, start_connector
    from connectors.sdk._spec import SpecVerifier, sign_spec

__all__ = [
    "CheckResult",
    "ColumnRead",
    "ConnectorPlugin",
    "ConnectorService",
    "DataSource",
    "ENTRY_POINT_GROUP",
    "FieldSpec",
    "FieldType",
    "InMemorySource",
    "PluginError",
    "Row",
    "Schema",
    "Sensitivity",
    "SourceConfig",
    "SpecVerifier",
    "SqlSource",
    "SqliteSource",
    "SyntheticPerson",
    "check_connector",
    "check_plugin",
    "discover_plugins",
    "render_report",
    "sign_spec",
    "start_connector",
]

# The server side imports the policy engine, which imports partner schemas (and so this
# package): load it on first use to keep the import graph acyclic.
_LAZY = {
    "CheckResult": "connectors.sdk._conformance",
    "check_connector": "connectors.sdk._conformance",
    "render_report": "connectors.sdk._conformance",
    "ConnectorService": "connectors.sdk._server",
    "start_connector": "connectors.sdk._server",
    "SpecVerifier": "connectors.sdk._spec",
    "sign_spec": "connectors.sdk._spec",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'connectors.sdk' has no attribute {name!r}")
