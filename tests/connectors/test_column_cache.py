"""The connector's column cache: a scanned column serves later large reads until the file
changes, and never a value older than the last commit.

Real SQLite files; the writer is another connection (as the partner's own loader would be).
Each read goes through ``fetch_values`` with the scan threshold forced on, and the scans are
counted by wrapping ``SqliteSource._scan_arrays``.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from connectors.sdk import FieldSpec, FieldType, Schema, Sensitivity, SqliteSource, _sqlite_source
from connectors.sdk._column_cache import ColumnCache
from connectors.sdk._sqlite_columns import ColumnIndex
from gateway.packed_ids import pack_ids

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
SCHEMA = Schema("test-partner", (
    FieldSpec("income", FieldType.FLOAT, Sensitivity.PERSONAL, "monthly income"),
    FieldSpec("months", FieldType.INT, Sensitivity.PERSONAL, "contribution months")))


def _pid(n: int) -> str:
    first17 = f"32040219850101{n:03d}"
    total = sum(int(c) * w for c, w in zip(first17, WEIGHTS, strict=True))
    return first17 + "10X98765432"[total % 11]


IDS = [_pid(n) for n in range(40)]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "p.db"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("CREATE TABLE t (person_id TEXT PRIMARY KEY, income REAL, months INTEGER)")
        conn.executemany("INSERT INTO t VALUES (?, ?, ?)",
                         [(pid, 1000.0 + n, n) for n, pid in enumerate(IDS)])
    conn.close()
    return path


@pytest.fixture
def scans() -> Iterator[mock.MagicMock]:
    with mock.patch.object(_sqlite_source, "SCAN_SHARE", 10**9), \
            mock.patch.object(SqliteSource, "_scan_arrays", autospec=True,
                              side_effect=SqliteSource._scan_arrays) as spy:
        yield spy


def _write(path: Path, sql: str, *params: Any) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute(sql, params)
    conn.close()


def _read(source: SqliteSource, field: str, ids: list[str]) -> list[float | None]:
    values, found = asyncio.run(source.fetch_values(pack_ids(ids), field))
    return [v if f else None for v, f in zip(values.tolist(), found.tolist(), strict=True)]


def test_a_scanned_column_serves_the_next_reads_without_a_scan(
        db: Path, scans: mock.MagicMock) -> None:
    source = SqliteSource(SCHEMA, db, "t")
    try:
        first = _read(source, "income", IDS[:30])
        again = _read(source, "income", IDS[10:])
        months = _read(source, "months", IDS[:3])
    finally:
        asyncio.run(source.aclose())
    assert first == [1000.0 + n for n in range(30)]
    assert again == [1000.0 + n for n in range(10, 40)]
    assert months == [0.0, 1.0, 2.0]
    assert [call.args[1] for call in scans.call_args_list] == ["income", "months"]
    assert (source.columns.hits, source.columns.misses) == (1, 2)


def test_a_commit_by_another_connection_is_seen_at_the_next_read(
        db: Path, scans: mock.MagicMock) -> None:
    source = SqliteSource(SCHEMA, db, "t")
    try:
        assert _read(source, "income", IDS[:2]) == [1000.0, 1001.0]
        _write(db, "UPDATE t SET income = ? WHERE person_id = ?", 5.5, IDS[1])
        assert _read(source, "income", IDS[:2]) == [1000.0, 5.5]
        _write(db, "DELETE FROM t WHERE person_id = ?", IDS[0])
        assert _read(source, "income", IDS[:2]) == [None, 5.5]
        assert _read(source, "income", IDS[:2]) == [None, 5.5]  # unchanged: from the cache
    finally:
        asyncio.run(source.aclose())
    assert scans.call_count == 3


def test_a_commit_during_the_scan_makes_its_index_stale(
        db: Path, scans: mock.MagicMock) -> None:
    source = SqliteSource(SCHEMA, db, "t")
    original = scans.side_effect

    def commit_then_scan(self: SqliteSource, field: str) -> Any:
        scans.side_effect = original  # only the first scan races with a writer
        _write(db, "UPDATE t SET income = 7.25 WHERE person_id = ?", IDS[0])
        return original(self, field)
    scans.side_effect = commit_then_scan
    try:
        _read(source, "income", IDS[:1])  # scanned after the commit, under the older token
        assert _read(source, "income", IDS[:1]) == [7.25]
    finally:
        asyncio.run(source.aclose())
    assert scans.call_count == 2  # the racing scan was not trusted


def test_the_bound_keeps_the_recent_columns_and_zero_keeps_none(
        db: Path, scans: mock.MagicMock) -> None:
    one_column = 40 * 17  # 40 rows, 17 bytes each
    for bound, want in ((0, ["income", "income", "months", "income"]),
                        (one_column, ["income", "months", "income"]),
                        (2 * one_column, ["income", "months"])):
        scans.reset_mock()
        source = SqliteSource(SCHEMA, db, "t", column_cache_bytes=bound)
        try:
            for field in ("income", "income", "months", "income"):
                _read(source, field, IDS[:5])
            assert source.columns.nbytes <= bound
        finally:
            asyncio.run(source.aclose())
        assert [call.args[1] for call in scans.call_args_list] == want, bound


def test_an_index_finds_exactly_the_held_keys() -> None:
    table = pack_ids([IDS[2], IDS[0], IDS[2], "1101011990010100AB"])
    index = ColumnIndex(table, *_arrays([1.0, 2.0, 3.0, 4.0], [True, True, False, True]))
    values, found = index.lookup(pack_ids([IDS[0], IDS[1], IDS[2], "1101011990010100AB"]))
    assert values.tolist() == [2.0, 0.0, 0.0, 0.0]  # IDS[2]: the last row (no value) counts
    assert found.tolist() == [True, False, False, False]
    assert index.nbytes == 2 * 17 and len(index.keys) == 2
    with pytest.raises(ValueError, match="want >= 0"):
        ColumnCache(lambda: 0, -1)


def _arrays(values: list[float], present: list[bool]) -> tuple[Any, Any]:
    import numpy as np

    return np.where(present, values, 0.0), np.array(present)
