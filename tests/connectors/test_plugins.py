"""Discovery by entry point (group pgw.connectors) and start-up validation of plug-ins."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from connectors import registry
from connectors.real_estate import PLUGIN as REAL_ESTATE
from connectors.sdk import ConnectorPlugin, PluginError, Schema, SourceConfig, discover_plugins
from connectors.sdk._plugin import load_plugins
from gateway.config import PARTNERS, load_config
from gateway.errors import ConfigError
from gateway.policy import default_catalogues


@dataclass
class FakeEntryPoint:
    name: str
    value: str
    obj: Any

    def load(self) -> Any:
        if isinstance(self.obj, Exception):
            raise self.obj
        return self.obj


def test_installed_partners_are_discovered() -> None:
    assert set(discover_plugins()) == {"social-security", "education", "bank", "real-estate"}
    assert PARTNERS == ("social-security", "education", "bank", "real-estate")
    assert sorted(default_catalogues()) == sorted(PARTNERS)
    assert registry.plugin("real-estate") is REAL_ESTATE


def _bad(name: str, obj: Any) -> str:
    with pytest.raises(PluginError) as info:
        load_plugins([FakeEntryPoint(name, f"pkg.{name}:PLUGIN", obj)])
    return str(info.value)


def test_a_bad_plugin_names_itself_and_what_is_missing() -> None:
    good = REAL_ESTATE
    assert "'x' (pkg.x:PLUGIN): got a dict, want a connectors.sdk.ConnectorPlugin" in _bad(
        "x", {})
    no_source = ConnectorPlugin("real-estate", good.schema, None)  # type: ignore[arg-type]
    assert "open_source: missing" in _bad("real-estate", no_source)
    assert "want the entry point name 'land'" in _bad("land", good)
    other = ConnectorPlugin("land", good.schema, good.open_source)
    assert "schema.partner: got 'real-estate', want 'land'" in _bad("land", other)
    empty = ConnectorPlugin("land", Schema("land", ()), good.open_source)
    assert "schema.fields: missing" in _bad("land", empty)
    assert "cannot be loaded: ModuleNotFoundError" in _bad(
        "land", ModuleNotFoundError("No module named 'land'"))
    with pytest.raises(PluginError, match="registered twice"):
        load_plugins([FakeEntryPoint("real-estate", "a:P", good),
                      FakeEntryPoint("real-estate", "b:P", good)])


def test_config_sections_are_validated_against_discovery(tmp_path: Path) -> None:
    from gateway.workdir import render_config

    text = render_config(people=10, seed=1)
    assert "[connectors.real-estate]" in text
    (tmp_path / "pgw.toml").write_text(text.replace("[connectors.bank]", "[connectors.tax]"))
    with pytest.raises(ConfigError, match=r"\[connectors.tax\]: unknown partner .*real-estate"):
        load_config(tmp_path / "pgw.toml")


def test_open_source_by_config(tmp_path: Path) -> None:
    from connectors.sdk.testing import write_synthetic_db

    db = write_synthetic_db(REAL_ESTATE, tmp_path, people=50)
    source = registry.open_source("real-estate", SourceConfig("real-estate", db))
    assert source.schema is REAL_ESTATE.schema
    asyncio.run(source.aclose())
    with pytest.raises(ValueError, match="unknown partner 'tax'"):
        registry.open_source("tax", db)
