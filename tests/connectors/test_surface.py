"""The public connector SDK: a sorted, documented front door (STYLE habit 1)."""

from __future__ import annotations

import connectors.sdk as sdk
import connectors.sdk.testing as testing

SURFACE = [
    "CheckResult", "ColumnRead", "ConnectorPlugin", "ConnectorService", "DataSource",
    "ENTRY_POINT_GROUP",
    "FieldSpec", "FieldType", "InMemorySource", "PluginError", "Row", "Schema", "Sensitivity",
    "SourceConfig", "SpecVerifier", "SqlSource", "SqliteSource", "SyntheticPerson",
    "check_connector", "check_plugin", "discover_plugins", "render_report", "sign_spec",
    "start_connector",
]


def test_sdk_surface_is_sorted_and_complete() -> None:
    assert sdk.__all__ == SURFACE
    assert sdk.__all__ == sorted(sdk.__all__)
    for name in sdk.__all__:
        assert getattr(sdk, name) is not None, name


def test_testing_helpers_surface() -> None:
    assert testing.__all__ == ["check_in_process", "synthetic_people", "write_synthetic_db"]


def test_datasource_contract() -> None:
    """One method to fetch, one to stream a column, aclose; stream_column is optional."""
    abstract = sdk.DataSource.__abstractmethods__
    assert abstract == frozenset({"fetch"})
    assert callable(sdk.DataSource.stream_column) and callable(sdk.DataSource.aclose)
    assert callable(sdk.DataSource.fetch_values) and callable(sdk.DataSource.start_values)
    assert sdk.ColumnRead.__abstractmethods__ == frozenset({"values"})
