"""The synthetic-data generator: determinism, valid identifiers, overlaps, consistency."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path

import pytest

import connectors.datagen as datagen
from connectors.datagen import PARTNERS, generate, load_person_ids
from gateway.validate import is_valid_credit_code, luhn_valid, normalize_person_id

PEOPLE = 5_000
TODAY = dt.date(2026, 11, 25)


def _rows(path: Path, table: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f'SELECT * FROM "{table}" ORDER BY rowid').fetchall()
    finally:
        conn.close()


def _dump(paths: dict[str, Path]) -> dict[str, list[tuple[object, ...]]]:
    return {key: _rows(paths[key], PARTNERS[key][2]) for key in paths}


@pytest.fixture(scope="module")
def dbs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return generate(tmp_path_factory.mktemp("gen"), people=PEOPLE)


@pytest.fixture(scope="module")
def data(dbs: dict[str, Path]) -> dict[str, list[tuple[object, ...]]]:
    return _dump(dbs)


def test_public_surface() -> None:
    assert datagen.__all__ == ["PARTNERS", "Progress", "generate", "load_person_ids"]


def test_files_and_keys(dbs: dict[str, Path]) -> None:
    assert {k: p.name for k, p in dbs.items()} == {
        "social-security": "social_security.db", "education": "education.db", "bank": "bank.db"}
    assert not list(dbs["bank"].parent.glob("*.tmp"))


def test_deterministic_for_a_seed(tmp_path: Path) -> None:
    first = _dump(generate(tmp_path / "a", seed=7, people=400))
    again = _dump(generate(tmp_path / "b", seed=7, people=400))
    other = _dump(generate(tmp_path / "c", seed=8, people=400))
    assert first == again
    for key in first:
        assert first[key] != other[key]
    for name in ("social_security.db", "education.db", "bank.db"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_regenerating_replaces_files(tmp_path: Path) -> None:
    generate(tmp_path / "x", seed=1, people=50)
    again = _dump(generate(tmp_path / "x", seed=1, people=30))
    assert again == _dump(generate(tmp_path / "fresh", seed=1, people=30))


def test_columns_follow_the_catalogue(dbs: dict[str, Path]) -> None:
    for key, (_, schema, table) in PARTNERS.items():
        conn = sqlite3.connect(dbs[key])
        cols = [r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')]
        indexes = conn.execute(f'PRAGMA index_list("{table}")').fetchall()
        conn.close()
        assert cols == ["person_id", *(f.name for f in schema.fields)]
        assert len(indexes) == 1


def test_identifiers_are_valid(data: dict[str, list[tuple[object, ...]]]) -> None:
    for key, rows in data.items():
        ids = [r[0] for r in rows]
        assert len(set(ids)) == len(ids), key
        for pid in ids:
            assert normalize_person_id(str(pid), today=TODAY) == pid
    assert all(is_valid_credit_code(str(r[3])) for r in data["social-security"])
    cards = [str(r[1]) for r in data["bank"]]
    assert len(set(cards)) == len(cards)
    assert all(luhn_valid(c) and c.startswith("62") and 16 <= len(c) <= 19 for c in cards)


def test_overlaps(data: dict[str, list[tuple[object, ...]]]) -> None:
    shares = {key: len(rows) / PEOPLE for key, rows in data.items()}
    assert shares["social-security"] == pytest.approx(0.85, abs=0.03)
    assert shares["education"] == pytest.approx(0.65, abs=0.03)
    assert shares["bank"] == pytest.approx(0.75, abs=0.03)
    ids = {key: {r[0] for r in rows} for key, rows in data.items()}
    both = len(ids["social-security"] & ids["bank"]) / PEOPLE
    assert both == pytest.approx(0.85 * 0.75, abs=0.03)


def test_social_security_consistency(data: dict[str, list[tuple[object, ...]]]) -> None:
    rows = data["social-security"]
    status = [r[2] for r in rows]
    assert status.count("active") / len(rows) == pytest.approx(0.85, abs=0.03)
    for (_pid, name, _st, _emp, district, base, total, continuous, last, benefit) in rows:
        assert isinstance(name, str) and 2 <= len(name) <= 3
        assert isinstance(district, str) and len(district) == 6
        assert isinstance(base, float) and 2_500 <= base <= 35_000
        assert isinstance(total, int) and isinstance(continuous, int)
        assert 1 <= continuous <= total
        assert isinstance(last, str) and "1995-01" <= last <= "2026-10"
        assert benefit in (0, 1)
    active_last = [r[8] for r in rows if r[2] == "active"]
    assert active_last.count("2026-10") / len(active_last) > 0.85
    assert {r[9] for r in rows if r[2] == "active"} == {0, 1}  # some fraud-pattern records
    assert any(r[9] for r in rows if r[2] != "active")


def test_education_consistency(data: dict[str, list[tuple[object, ...]]]) -> None:
    levels = {"none": 0, "associate": 1, "bachelor": 2, "master": 3, "doctor": 4}
    seen = set()
    for pid, degree, level, institution, _major, year, certificate in data["education"]:
        assert levels[str(degree)] == level
        seen.add(degree)
        if level == 0:
            assert institution is None and year is None and certificate is None
            continue
        birth_year = int(str(pid)[6:10])
        assert isinstance(year, int) and birth_year + 18 <= year <= 2026
        assert isinstance(certificate, str) and len(certificate) == 16
        assert certificate[5:9] == str(year)
    assert seen == set(levels)


def test_bank_consistency(data: dict[str, list[tuple[object, ...]]]) -> None:
    rows = data["bank"]
    for _pid, _card, inflows_json, avg, overdue, loans in rows:
        inflows = json.loads(str(inflows_json))
        assert len(inflows) == 12 and all(x >= 0 for x in inflows)
        assert isinstance(avg, float)
        assert abs(sum(inflows) / 12 - avg) <= 0.01
        assert overdue in (0, 1) and isinstance(loans, float) and loans >= 0
        assert not overdue or loans > 0
    assert sum(1 for r in rows if r[4]) / len(rows) == pytest.approx(0.04, abs=0.02)


def test_income_correlates_with_contribution_base(
    data: dict[str, list[tuple[object, ...]]],
) -> None:
    base = {r[0]: float(str(r[5])) for r in data["social-security"] if r[2] == "active"}
    pairs = [(base[r[0]], float(str(r[3]))) for r in data["bank"] if r[0] in base]
    n = len(pairs)
    mx = sum(x for x, _ in pairs) / n
    my = sum(y for _, y in pairs) / n
    cov = sum((x - mx) * (y - my) for x, y in pairs)
    var_x = sum((x - mx) ** 2 for x, _ in pairs)
    var_y = sum((y - my) ** 2 for _, y in pairs)
    assert cov / (var_x * var_y) ** 0.5 > 0.6


def test_progress_and_load_person_ids(tmp_path: Path) -> None:
    calls: list[tuple[str, int, int]] = []
    paths = generate(tmp_path, people=300, progress=lambda *a: calls.append(a))
    stages = [c[0] for c in calls]
    assert stages[0] == "people" and stages[-1] == "bank"
    assert set(stages) == {"people", *PARTNERS}
    for stage in PARTNERS:
        last = [c for c in calls if c[0] == stage][-1]
        assert last[1] == last[2]
    ids = load_person_ids(paths["education"])
    assert ids == [r[0] for r in _rows(paths["education"], "education")]
    assert load_person_ids(paths["education"], 5) == ids[:5]


def test_rejects_empty_population(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="people"):
        generate(tmp_path, people=0)
