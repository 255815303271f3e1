"""Write the synthetic population into one SQLite database per partner.

The table layout is derived from each partner's catalogue (one column per field, plus
``person_id``), so the databases always match what the connectors publish.
"""

from __future__ import annotations

import os
import random
import sqlite3
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

from connectors.bank import source as bank_source
from connectors.datagen import _records as rec
from connectors.datagen._people import Person, make_people
from connectors.education import source as education_source
from connectors.sdk._schema import FieldType, Schema
from connectors.social_security import source as social_security_source

Progress = Callable[[str, int, int], None]
RowBuilder = Callable[[Person], tuple[object, ...]]

#: Partner key -> (file name, schema, table).
PARTNERS: dict[str, tuple[str, Schema, str]] = {
    "social-security": ("social_security.db", social_security_source.SCHEMA,
                        social_security_source.TABLE),
    "education": ("education.db", education_source.SCHEMA, education_source.TABLE),
    "bank": ("bank.db", bank_source.SCHEMA, bank_source.TABLE),
}
_SQL_TYPE = {FieldType.INT: "INTEGER", FieldType.BOOL: "INTEGER", FieldType.FLOAT: "REAL"}
_BATCH = 10_000


def _builders(seed: int, people: int) -> dict[str, tuple[Callable[[Person], bool], RowBuilder]]:
    """Per-partner membership test and row builder, each with its own random stream."""
    ss_rng = random.Random(f"{seed}/social-security")
    edu_rng = random.Random(f"{seed}/education")
    bank_rng = random.Random(f"{seed}/bank")
    employers, employer_cw = rec.make_employers(
        random.Random(f"{seed}/employers"), min(3_000, max(20, people // 30)))
    certificates: set[str] = set()
    cards: set[str] = set()
    return {
        "social-security": (lambda p: p.in_social_security,
                            lambda p: rec.social_security_row(p, ss_rng, employers, employer_cw)),
        "education": (lambda p: p.in_education,
                      lambda p: rec.education_row(p, edu_rng, certificates)),
        "bank": (lambda p: p.in_bank, lambda p: rec.bank_row(p, bank_rng, cards)),
    }


def _create(conn: sqlite3.Connection, schema: Schema, table: str) -> str:
    """Create ``table`` for ``schema``; return the matching INSERT statement."""
    columns = ['"person_id" TEXT NOT NULL']
    columns += [f'"{f.name}" {_SQL_TYPE.get(f.type, "TEXT")}' for f in schema.fields]
    conn.execute(f'CREATE TABLE "{table}" ({", ".join(columns)})')
    marks = ", ".join("?" * (len(schema.fields) + 1))
    return f'INSERT INTO "{table}" VALUES ({marks})'


def _write(path: Path, schema: Schema, table: str, rows: Iterator[list[tuple[object, ...]]],
           total: int, report: Callable[[int, int], None]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    conn = sqlite3.connect(tmp, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=OFF")  # a fresh temp file: atomicity via rename
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("BEGIN")
        insert = _create(conn, schema, table)
        done = 0
        for batch in rows:
            conn.executemany(insert, batch)
            done += len(batch)
            report(done, total)
        conn.execute(f'CREATE UNIQUE INDEX "{table}_person_id" ON "{table}" ("person_id")')
        conn.execute("COMMIT")
    finally:
        conn.close()
    os.replace(tmp, path)


def _batches(members: list[Person], build: RowBuilder) -> Iterator[list[tuple[object, ...]]]:
    for start in range(0, len(members), _BATCH):
        yield [build(p) for p in members[start:start + _BATCH]]


def generate(
    out_dir: Path,
    *,
    seed: int = 20261125,
    people: int = 100_000,
    progress: Progress | None = None,
) -> dict[str, Path]:
    """Generate ``people`` synthetic people into one SQLite file per partner in ``out_dir``.

    Deterministic in ``seed`` and ``people``. ``progress(stage, done, total)`` is called
    per batch, with stage ``"people"`` and then each partner key. Returns partner key -> path.
    """
    if people < 1:
        raise ValueError(f"people must be positive, got {people}")
    report: Progress = progress or (lambda stage, done, total: None)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    population = make_people(random.Random(f"{seed}/people"), people)
    report("people", people, people)
    builders = _builders(seed, people)
    paths: dict[str, Path] = {}
    for partner, (filename, schema, table) in PARTNERS.items():
        member, build = builders[partner]
        members = [p for p in population if member(p)]
        paths[partner] = out_dir / filename
        _write(paths[partner], schema, table, _batches(members, build), len(members),
               partial(report, partner))
    return paths


def load_person_ids(db_path: str | Path, limit: int | None = None) -> list[str]:
    """Person ids of a generated database in rowid order (for demos and benches)."""
    path = Path(db_path).resolve()
    conn = sqlite3.connect(path.as_uri() + "?mode=ro", uri=True)
    try:
        (table,) = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name LIMIT 1"
        ).fetchone()
        if table not in {t for _, _, t in PARTNERS.values()} | _plugin_tables():
            raise ValueError(f"{path.name}: not a generated partner database")
        sql = f'SELECT "person_id" FROM "{table}" ORDER BY rowid'
        if limit is None:
            return [r[0] for r in conn.execute(sql)]
        return [r[0] for r in conn.execute(sql + " LIMIT ?", (limit,))]
    finally:
        conn.close()


def _plugin_tables() -> set[str]:
    """Tables of installed plug-ins' synthetic data (written by ``_plugins``)."""
    from connectors.registry import plugins

    return {p.table_name for p in plugins().values() if p.synthesize}
