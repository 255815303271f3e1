"""Reading one column for Encrypt: the same values as ``fetch``, whichever way it is read."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from connectors.bank import source as bank
from connectors.datagen import generate, load_person_ids
from connectors.sdk._compute_he import column_values
from connectors.sdk._datasource import InMemorySource

UNKNOWN = "320402199003071235"  # valid, but not in the generated population
FIELD = "income_avg_12m"


@pytest.fixture(scope="module")
def bank_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("col"), seed=5, people=400)["bank"]


def _both(path: Path, subjects: list[str]) -> tuple[list[object], list[object]]:
    async def run() -> tuple[list[object], list[object]]:
        source = bank.open_source(path)
        try:
            rows = await source.fetch(subjects, [FIELD])
            return await source.fetch_column(subjects, FIELD), [
                None if r is None else r[FIELD] for r in rows]
        finally:
            await source.aclose()
    return asyncio.run(run())


def test_scan_and_in_batches_agree_with_fetch(bank_db: Path) -> None:
    ids = load_person_ids(bank_db)
    many = [UNKNOWN, *reversed(ids)]  # the whole table: one sequential scan
    got, want = _both(bank_db, many)
    assert got == want and got[0] is None and len(got) == len(ids) + 1
    few = ids[:5] + [UNKNOWN]  # a few subjects: indexed IN batches
    got, want = _both(bank_db, few)
    assert got == want and got[-1] is None


def test_default_reads_through_fetch() -> None:
    source = InMemorySource(bank.SCHEMA, {"a": {FIELD: 1.5}, "b": {FIELD: None}})
    assert asyncio.run(source.fetch_column(["b", "x", "a"], FIELD)) == [None, None, 1.5]


def test_column_values_mark_missing_as_absent_zero() -> None:
    values, found = column_values([2.5, None, 3, True])
    assert values.tolist() == [2.5, 0.0, 3.0, 1.0] and found.tolist() == [True, False, True, True]
    values, found = column_values([])
    assert values.dtype == np.float64 and len(found) == 0
