"""SqliteSource over the generated partner databases."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from connectors.bank import source as bank
from connectors.datagen import generate, load_person_ids
from connectors.education import source as education
from connectors.sdk import FieldType, Schema
from connectors.sdk._sqlite_source import CHUNK_SIZE, SqliteSource
from connectors.social_security import source as social_security

SOURCES = {"social-security": social_security, "education": education, "bank": bank}
TYPES: dict[FieldType, type | tuple[type, ...]] = {
    FieldType.STRING: str, FieldType.INT: int, FieldType.FLOAT: float, FieldType.BOOL: bool,
    FieldType.DATE: str, FieldType.MONTH: str, FieldType.CODE: str, FieldType.FLOAT_LIST: list,
}
UNKNOWN = "320402199003071235"  # valid, but not in the generated population


@pytest.fixture(scope="module")
def dbs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return generate(tmp_path_factory.mktemp("src"), seed=11, people=1_500)


def _fetch(source: SqliteSource, subjects: Sequence[str], fields: Sequence[str]) -> list[Any]:
    async def run() -> list[Any]:
        try:
            return await source.fetch(subjects, fields)
        finally:
            await source.aclose()
    return asyncio.run(run())


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("partner", sorted(SOURCES))
def test_types_match_the_schema(dbs: dict[str, Path], partner: str) -> None:
    source = SOURCES[partner].open_source(dbs[partner])
    schema: Schema = source.schema
    ids = load_person_ids(dbs[partner])
    rows = _fetch(source, ids, [f.name for f in schema.fields])
    assert len(rows) == len(ids) > CHUNK_SIZE  # several chunks
    for spec in schema.fields:
        values = [row[spec.name] for row in rows if row[spec.name] is not None]
        assert values, spec.name
        assert all(type(x) is TYPES[spec.type] for x in values), spec.name
        if spec.type is FieldType.FLOAT_LIST:
            assert all(len(x) == 12 and all(type(y) is float for y in x) for x in values)


def test_order_duplicates_and_missing(dbs: dict[str, Path]) -> None:
    ids = load_person_ids(dbs["bank"], 40)
    subjects = [ids[30], UNKNOWN, ids[2], ids[30], ids[7]]
    rows = _fetch(bank.open_source(dbs["bank"]), subjects, ["income_avg_12m", "card_number"])
    conn = sqlite3.connect(dbs["bank"])
    truth = dict(conn.execute("SELECT person_id, income_avg_12m FROM bank"))
    conn.close()
    assert rows[1] is None
    for subject, row in zip(subjects, rows, strict=True):
        if row is not None:
            assert set(row) == {"income_avg_12m", "card_number"}
            assert row["income_avg_12m"] == truth[subject]
    assert rows[0] == rows[3]


def test_empty_request_and_empty_fields(dbs: dict[str, Path]) -> None:
    assert _fetch(education.open_source(dbs["education"]), [], ["major"]) == []
    ids = load_person_ids(dbs["education"], 2)
    assert _fetch(education.open_source(dbs["education"]), [*ids, UNKNOWN], []) == [{}, {}, None]


@pytest.mark.parametrize("subject", [
    "1' OR '1'='1", "') OR 1=1 --", "x'); DROP TABLE social_security; --", "%", "*", "",
])
def test_injection_shaped_subjects_match_nothing(dbs: dict[str, Path], subject: str) -> None:
    path = dbs["social-security"]
    before = _digest(path)
    rows = _fetch(social_security.open_source(path), [subject], ["name", "insured_status"])
    assert rows == [None]
    assert _digest(path) == before
    assert len(load_person_ids(path)) > 1_000


def test_unknown_field_is_refused(dbs: dict[str, Path]) -> None:
    source = social_security.open_source(dbs["social-security"])
    with pytest.raises(ValueError, match="'card_number'"):
        _fetch(source, [UNKNOWN], ["name", "card_number"])
    with pytest.raises(ValueError, match="person_id"):
        _fetch(social_security.open_source(dbs["social-security"]), [UNKNOWN], ["person_id"])


def test_opened_read_only(dbs: dict[str, Path]) -> None:
    source = bank.open_source(dbs["bank"])
    try:
        with source._pool.borrow() as conn:  # white-box: a pooled connection refuses writes
            with pytest.raises(sqlite3.OperationalError, match="readonly"):
                conn.execute("DELETE FROM bank")
    finally:
        asyncio.run(source.aclose())


def test_closed_source_refuses(dbs: dict[str, Path]) -> None:
    source = bank.open_source(dbs["bank"])
    asyncio.run(source.aclose())
    asyncio.run(source.aclose())  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        _fetch(source, [UNKNOWN], ["card_number"])


def test_concurrent_fetches(dbs: dict[str, Path]) -> None:
    ids = load_person_ids(dbs["bank"], 200)
    source = bank.open_source(dbs["bank"])

    async def run() -> list[list[Any]]:
        try:
            return await asyncio.gather(*(source.fetch(ids[i::4], ["card_number"])
                                          for i in range(4)))
        finally:
            await source.aclose()
    results = asyncio.run(run())
    assert [len(r) for r in results] == [50] * 4
    assert all(row is not None for r in results for row in r)


def test_construction_checks(dbs: dict[str, Path], tmp_path: Path) -> None:
    schema = bank.SCHEMA
    with pytest.raises(sqlite3.OperationalError):
        SqliteSource(schema, tmp_path / "missing.db", "bank")
    with pytest.raises(ValueError, match="lacks columns"):
        SqliteSource(schema, dbs["education"], "education")
    with pytest.raises(ValueError, match="plain SQL identifier"):
        SqliteSource(schema, dbs["bank"], 'bank" --')
    with pytest.raises(ValueError, match="unknown field"):
        SqliteSource(schema, dbs["bank"], "bank", decoders={"nope": str})


def test_custom_decoder(dbs: dict[str, Path]) -> None:
    source = SqliteSource(bank.SCHEMA, dbs["bank"], "bank",
                          decoders={"income_avg_12m": lambda raw: round(raw)})
    (row,) = _fetch(source, load_person_ids(dbs["bank"], 1), ["income_avg_12m"])
    assert type(row["income_avg_12m"]) is int
