"""``pgw connector new`` makes a package whose tests pass as generated; the real-estate
partner's synthetic data describes the same people as the others, deterministically."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from connectors.datagen import generate, load_person_ids
from connectors.datagen._plugins import generate_plugin_data
from connectors.real_estate import PLUGIN
from connectors.sdk.testing import synthetic_people
from gateway.cli import main


def test_scaffolded_package_passes_its_own_tests(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["connector", "new", "land-tax", "--dir", str(tmp_path)]) == 0
    root = tmp_path / "pgw-connector-land-tax"
    assert f"created {root}" in capsys.readouterr().out
    pyproject = (root / "pyproject.toml").read_text()
    assert '[project.entry-points."pgw.connectors"]\nland-tax = "land_tax:PLUGIN"' in pyproject
    for rel in ("land_tax/__init__.py", "land_tax/schema.py", "land_tax/source.py",
                "land_tax/synthetic.py", "policies/agreements/hpf-loan-land-tax.yaml",
                "tests/test_land_tax.py"):
        assert (root / rel).is_file(), rel
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                          cwd=root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 passed" in done.stdout


def test_scaffold_refuses_bad_names_and_existing_dirs(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["connector", "new", "Land_Tax", "--dir", str(tmp_path)]) == 1
    assert "want lowercase letters" in capsys.readouterr().err
    assert main(["connector", "new", "tax", "--dir", str(tmp_path)]) == 0
    assert main(["connector", "new", "tax", "--dir", str(tmp_path)]) == 1
    assert "already exists" in capsys.readouterr().err


def _rows(path: Path) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT * FROM real_estate ORDER BY rowid").fetchall()
    finally:
        conn.close()


def test_real_estate_data(tmp_path: Path) -> None:
    people = 3_000
    builtin = generate(tmp_path / "a", seed=3, people=people)
    paths = generate_plugin_data(tmp_path / "a", seed=3, people=people)
    assert {k: p.name for k, p in paths.items()} == {"real-estate": "real_estate.db"}
    rows = _rows(paths["real-estate"])
    again = _rows(generate_plugin_data(tmp_path / "b", seed=3, people=people)["real-estate"])
    other = _rows(generate_plugin_data(tmp_path / "c", seed=4, people=people)["real-estate"])
    assert rows == again and rows != other
    assert len(rows) / people == pytest.approx(0.40, abs=0.04)
    population = {p.person_id for p in synthetic_people(people, seed=3)}
    ids = [str(r[0]) for r in rows]
    assert set(ids) <= population and len(set(ids)) == len(ids)
    assert set(load_person_ids(paths["real-estate"])) == set(ids)
    ss = set(load_person_ids(builtin["social-security"]))
    assert len(ss & set(ids)) / len(ids) == pytest.approx(0.85, abs=0.05)
    for _pid, owned, first, last, mortgage, district in rows:
        assert owned in (0, 1, 2, 3)
        assert "1998-01-01" <= str(first) <= str(last) <= "2026-10-31"
        assert mortgage in (0, 1) and not (owned == 0 and mortgage)
        assert str(district).startswith("3204")
    assert {r[1] for r in rows} == {0, 1, 2, 3}
    assert PLUGIN.database_name == "real_estate.db"
