"""The generic SQL DataSource answers exactly as the hand-written ones on the same data,
including for injection-shaped subject ids, by column or by configured query."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from connectors.bank import source as bank
from connectors.datagen import PARTNERS, generate, load_person_ids
from connectors.education import source as education
from connectors.real_estate import PLUGIN as REAL_ESTATE
from connectors.sdk import DataSource, SourceConfig, SqliteSource, SqlSource
from connectors.sdk.testing import write_synthetic_db
from connectors.social_security import source as social_security
from gateway.errors import ConfigError

HAND_WRITTEN = {"social-security": social_security, "education": education, "bank": bank}
UNKNOWN = "320402199003071235"
INJECTIONS = ["1' OR '1'='1", "x\") OR 1=1 --", "320402199001011234'; DROP TABLE bank; --",
              "%", "' UNION SELECT * FROM bank --"]


@pytest.fixture(scope="module")
def dbs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return generate(tmp_path_factory.mktemp("sql"), seed=5, people=600)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _both(a: DataSource, b: DataSource, subjects: list[str],
                fields: list[str]) -> tuple[Any, Any]:
    try:
        return await a.fetch(subjects, fields), await b.fetch(subjects, fields)
    finally:
        await a.aclose()
        await b.aclose()


async def _collect(stream: AsyncIterator[tuple[str, Any]]) -> list[tuple[str, Any]]:
    return [item async for item in stream]


@pytest.mark.parametrize("partner", sorted(HAND_WRITTEN))
def test_same_answers_as_the_hand_written_source(dbs: dict[str, Path], partner: str) -> None:
    module = HAND_WRITTEN[partner]
    ids = load_person_ids(dbs[partner])
    subjects = [*ids[:40], UNKNOWN, *INJECTIONS, ids[3], *ids[-600:]]
    fields = [f.name for f in module.SCHEMA.fields]
    sql = SqlSource.from_config(module.SCHEMA, SourceConfig(partner, dbs[partner]),
                                table=PARTNERS[partner][2])
    mine, theirs = run(_both(sql, module.open_source(dbs[partner]), subjects, fields))
    assert mine == theirs
    assert all(r is None for r in mine[41:41 + len(INJECTIONS)])
    assert sum(r is not None for r in mine) > 40


def test_stream_column_matches(dbs: dict[str, Path]) -> None:
    sql = SqlSource.from_config(bank.SCHEMA, SourceConfig("bank", dbs["bank"]), table="bank")
    hand = bank.open_source(dbs["bank"])

    async def both() -> tuple[Any, Any]:
        try:
            return (await _collect(sql.stream_column("overdue_flag", {"overdue_flag": True})),
                    await _collect(hand.stream_column("overdue_flag", {"overdue_flag": True})))
        finally:
            await sql.aclose()
            await hand.aclose()

    mine, theirs = run(both())
    assert mine == theirs and mine and all(v is True for _, v in mine)
    assert [k for k, _ in mine] == sorted(k for k, _ in mine)


@pytest.fixture(scope="module")
def registry_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The real-estate data as generated, and the same facts in a registry's own layout:
    people under other column names, titles in a second table (counted by a query)."""
    root = tmp_path_factory.mktemp("re")
    plain = write_synthetic_db(REAL_ESTATE, root, people=800, seed=9)
    other = root / "registry.db"
    src = sqlite3.connect(plain)
    rows = src.execute("SELECT * FROM real_estate").fetchall()
    src.close()
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE owners (id_no TEXT PRIMARY KEY, first_reg TEXT, last_reg TEXT, "
                 "has_mortgage INTEGER, district TEXT)")
    conn.execute("CREATE TABLE titles (owner TEXT, title_no INTEGER, active INTEGER)")
    for pid, owned, first, last, mortgage, district in rows:
        conn.execute("INSERT INTO owners VALUES (?, ?, ?, ?, ?)",
                     (pid, first, last, mortgage, district))
        conn.executemany("INSERT INTO titles VALUES (?, ?, ?)",
                         [(pid, n, 1) for n in range(owned)] + [(pid, 99, 0)])
    conn.commit()
    conn.close()
    return plain, other


MAPPING = {
    "table": "owners", "key_column": "id_no",
    "columns": {"first_registration_date": "first_reg", "last_registration_date": "last_reg",
                "mortgage_flag": "has_mortgage", "district_code": "district"},
    "queries": {"properties_owned": "SELECT owner, COUNT(*) FILTER (WHERE active = 1) "
                                    "FROM titles WHERE owner IN (:subjects) GROUP BY owner"},
}


def test_columns_and_queries_by_configuration(registry_db: tuple[Path, Path]) -> None:
    plain, other = registry_db
    ids = [r for (r,) in sqlite3.connect(plain).execute("SELECT person_id FROM real_estate")]
    subjects = [*ids[:120], UNKNOWN, *INJECTIONS, ids[0]]
    fields = [f.name for f in REAL_ESTATE.schema.fields]
    mapped = SqlSource.from_config(REAL_ESTATE.schema, SourceConfig(
        "real-estate", plain, {"dsn": f"sqlite:///{other}", **MAPPING}))
    default = REAL_ESTATE.open_source(SourceConfig("real-estate", plain))
    mine, theirs = run(_both(mapped, default, subjects, fields))
    assert mine == theirs
    assert {r["properties_owned"] for r in mine if r} >= {0, 1, 2}


@pytest.mark.parametrize(("change", "message"), [
    ({"table": "owners; DROP TABLE x"}, "want a plain SQL identifier"),
    ({"columns": {"mortgage_flag": "has mortgage"}}, "want a plain SQL identifier"),
    ({"columns": {"no_such_field": "x"}}, "no_such_field: not a field of real-estate"),
    ({"queries": {"properties_owned": "SELECT owner, 1 FROM titles WHERE owner = 'x'"}},
     "containing :subjects exactly once"),
    ({"queries": {"properties_owned": "SELECT 1 FROM t WHERE a IN (:subjects); DELETE FROM t"}},
     "no ';'"),
    ({"columns": {"mortgage_flag": "nope"}}, "cannot read owners"),
    ({"colums": {}}, "unknown key"),
    ({"dsn": "mysql://x/y"}, "want sqlite or postgresql"),
])
def test_bad_configuration_fails_at_open(registry_db: tuple[Path, Path],
                                         change: dict[str, Any], message: str) -> None:
    _, other = registry_db
    sql = {"dsn": str(other), **MAPPING, **change}
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(";", ";")):
        SqlSource.from_config(REAL_ESTATE.schema, SourceConfig("real-estate", other, sql))


@pytest.mark.postgres
def test_postgres_by_dsn(registry_db: tuple[Path, Path]) -> None:
    dsn = os.environ.get("PGW_TEST_PG_DSN")
    if not dsn:
        pytest.skip("PGW_TEST_PG_DSN not set")
    import psycopg

    plain, _ = registry_db
    rows = sqlite3.connect(plain).execute("SELECT * FROM real_estate").fetchall()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS pgw_real_estate")
        conn.execute("CREATE TABLE pgw_real_estate (person_id TEXT PRIMARY KEY, "
                     "properties_owned INT, first_registration_date DATE, "
                     "last_registration_date DATE, mortgage_flag BOOLEAN, district_code TEXT)")
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO pgw_real_estate VALUES (%s, %s, %s, %s, %s, %s)",
                            [(*r[:4], bool(r[4]), r[5]) for r in rows])
    try:
        ids = [r[0] for r in rows[:50]]
        fields = [f.name for f in REAL_ESTATE.schema.fields]
        pg = SqlSource(REAL_ESTATE.schema, dsn=dsn, table="pgw_real_estate")
        default = REAL_ESTATE.open_source(SourceConfig("real-estate", plain))
        mine, theirs = run(_both(pg, default, [*ids, *INJECTIONS], fields))
        assert mine == theirs
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS pgw_real_estate")


def test_sqlite_source_streams_in_pages(dbs: dict[str, Path], monkeypatch: Any) -> None:
    import connectors.sdk._sqlite_source as mod

    monkeypatch.setattr(mod, "CHUNK_SIZE", 7)
    source = SqliteSource(education.SCHEMA, dbs["education"], "education")

    async def go() -> list[tuple[str, Any]]:
        try:
            return await _collect(source.stream_column("degree_level"))
        finally:
            await source.aclose()

    got = run(go())
    assert [k for k, _ in got] == sorted(load_person_ids(dbs["education"]))
