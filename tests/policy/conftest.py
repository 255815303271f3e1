"""Shared fixtures for the policy tests: a writable copy of the shipped policy directory."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

SHIPPED = Path(__file__).resolve().parents[2] / "policies"


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    """A copy of ``policies/`` that a test may break."""
    target = tmp_path / "policies"
    shutil.copytree(SHIPPED, target)
    return target


@pytest.fixture
def agreement_doc() -> Callable[[str], dict[str, Any]]:
    """Read one shipped agreement as a plain dict, by file stem."""

    def read(stem: str) -> dict[str, Any]:
        data = yaml.safe_load((SHIPPED / "agreements" / f"{stem}.yaml").read_text("utf-8"))
        assert isinstance(data, dict)
        return data

    return read


@pytest.fixture
def write_agreement(policy_dir: Path) -> Callable[[str, Any], Path]:
    """Write an agreement (a dict, dumped as YAML, or raw text) into the copy."""

    def write(stem: str, doc: Any) -> Path:
        path = policy_dir / "agreements" / f"{stem}.yaml"
        text = doc if isinstance(doc, str) else yaml.safe_dump(doc, sort_keys=False)
        path.write_text(text, encoding="utf-8")
        return path

    return write
