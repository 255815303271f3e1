"""``fetch_values``: the float64 column Encrypt needs, the same whichever way it is read.

The reference is ``fetch_column`` plus the conversion Encrypt applied before packed ids
(``None`` -> missing, anything else -> ``float()``), computed value by value here, on real
SQLite files holding duplicate keys, malformed keys, lower-case ``x`` keys, NULLs and mixed
storage types, both below the scan threshold (indexed lookups) and above it (one scan).
"""

from __future__ import annotations

import asyncio
import itertools
import math
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.sdk import (
    DataSource,
    FieldSpec,
    FieldType,
    InMemorySource,
    Schema,
    Sensitivity,
    SqliteSource,
    _sqlite_source,
)
from connectors.sdk._column_read import ScannedColumn
from connectors.sdk._compute_he import column_values
from gateway.packed_ids import pack_ids

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
FIELDS = {"i": FieldType.INT, "f": FieldType.FLOAT, "b": FieldType.BOOL,
          "s": FieldType.STRING, "c": FieldType.STRING}
SCHEMA = Schema("test-partner", tuple(
    FieldSpec(name, kind, Sensitivity.PERSONAL, f"a {kind.value} field")
    for name, kind in FIELDS.items()))
BELOW, ABOVE = 0, 10**9  # SCAN_SHARE values that force indexed lookups / one scan


def _with_check(first17: str) -> str:
    total = sum(int(c) * w for c, w in zip(first17, WEIGHTS, strict=True))
    return first17 + "10X98765432"[total % 11]


def _halve(raw: Any) -> Any:
    """A custom decoder: empty text is no value, anything else half its number."""
    return None if raw == "" else float(raw) / 2


_IDS = [_with_check(f"11010119900101{n:03d}") for n in range(60)]
POOL = [pid for pid in _IDS if pid.endswith("X")][:4] + [p for p in _IDS if p[-1] != "X"][:8]
OUTSIDERS = [p for p in _IDS if p not in POOL][:4]  # valid ids the table never holds
_MALFORMED = ["123", POOL[1][:17] + "A", POOL[2] + "0", "11010119900101001\u00e9",
              int(POOL[5]), POOL[6].encode(), None]
_keys = st.one_of(st.sampled_from(POOL), st.sampled_from(POOL[:4]).map(str.lower),
                  st.sampled_from(_MALFORMED))
_ints = st.integers(-(2**63), 2**63 - 1)
_floats = st.floats(allow_nan=False, allow_infinity=False)


def _columns(texts: bool) -> st.SearchStrategy[tuple[Any, ...]]:
    """A row's key and values; with ``texts``, numeric fields also hold text (decoded one by
    one), without, only numbers (converted by numpy at once)."""
    def mixed(numbers: st.SearchStrategy[Any], text: st.SearchStrategy[str]
              ) -> st.SearchStrategy[Any]:
        return st.one_of(st.none(), numbers, text) if texts else st.one_of(st.none(), numbers)
    return st.tuples(
        _keys,
        mixed(st.one_of(_ints, _floats), st.integers(-999, 999).map(str)),
        mixed(st.one_of(_ints, st.floats(allow_nan=False)), st.just(" 2.5e3 ")),
        mixed(st.one_of(st.integers(-2, 2), _floats), st.sampled_from(["0", ""])),
        st.one_of(st.none(), _floats.map(repr), st.sampled_from(["1e3", " 7 ", "-0"])),
        st.one_of(st.none(), st.just(""), _ints.map(str), _floats))


_rows = st.booleans().flatmap(lambda texts: st.lists(_columns(texts), max_size=40))
_subjects = st.lists(st.sampled_from(POOL + OUTSIDERS), max_size=40)


def _table(path: Path, rows: Sequence[tuple[Any, ...]]) -> Path:
    """A table without declared types (values keep their storage class) or a primary key."""
    with sqlite3.connect(path) as conn:
        conn.execute(f"CREATE TABLE t (person_id, {', '.join(FIELDS)})")
        conn.executemany(f"INSERT INTO t VALUES (?{', ?' * len(FIELDS)})", rows)
    conn.close()
    return path


def _reference(raw: Sequence[Any]) -> tuple[list[float], list[bool]]:
    """What Encrypt made of a read column: 0.0 and absent for None, else ``float()``."""
    return [0.0 if v is None else float(v) for v in raw], [v is not None for v in raw]


async def _compare(source: DataSource, subjects: list[str], fields: Sequence[str]) -> None:
    try:
        for field in fields:
            values, found = await source.fetch_values(pack_ids(subjects), field)
            want_values, want_found = _reference(await source.fetch_column(subjects, field))
            assert values.dtype == np.float64 and found.dtype == np.bool_
            assert found.tolist() == want_found, field
            np.testing.assert_array_equal(values, want_values, err_msg=field)
    finally:
        await source.aclose()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=_rows, subjects=_subjects, share=st.sampled_from([BELOW, ABOVE]),
       batch=st.sampled_from([3, 4096]))
def test_sqlite_values_equal_fetch_column(tmp_path_factory: pytest.TempPathFactory,
                                          rows: list[tuple[Any, ...]], subjects: list[str],
                                          share: int, batch: int) -> None:
    path = _table(tmp_path_factory.mktemp("fv") / "t.db", rows)
    source = SqliteSource(SCHEMA, path, "t", decoders={"c": _halve})
    with (mock.patch.object(_sqlite_source, "SCAN_SHARE", share),
          mock.patch.object(_sqlite_source, "SCAN_BATCH", batch)):
        asyncio.run(_compare(source, subjects, list(FIELDS)))


@settings(max_examples=50, deadline=None)
@given(held=st.dictionaries(st.sampled_from(POOL), st.one_of(
    st.none(), _ints, st.floats(allow_nan=False), st.booleans(), st.just("0.5"))),
    subjects=_subjects)
def test_default_path_over_fetch_column(held: Mapping[str, Any], subjects: list[str]) -> None:
    source = InMemorySource(SCHEMA, {pid: {"f": value} for pid, value in held.items()})
    asyncio.run(_compare(source, subjects, ["f"]))


def test_scan_keeps_the_last_duplicate_and_drops_what_no_id_equals(tmp_path: Path) -> None:
    lower = POOL[0][:17] + "x"  # POOL[0] ends in X: stored lower-case, it is another key
    path = _table(tmp_path / "t.db", [
        (POOL[4], -1.5, 1.0, 1, "1", "2"), (POOL[4], None, 2.5, 0, None, "4"),
        (lower, 7, 7.0, 1, "7", "7"), (POOL[5][:17], 9, 9.0, 1, "9", "9"),
        (int(POOL[6]), 6, 6.0, 1, "6", "6"), (POOL[7], 3.75, None, 2, "3", "")])
    subjects = [POOL[7], POOL[0], POOL[4], OUTSIDERS[0], POOL[5], POOL[6], POOL[4]]
    source = SqliteSource(SCHEMA, path, "t", decoders={"c": _halve})
    spy = mock.patch.object(SqliteSource, "_scan_arrays", autospec=True,
                            side_effect=SqliteSource._scan_arrays)

    async def run() -> dict[str, tuple[list[float], list[bool]]]:
        try:
            return {f: tuple(a.tolist() for a in await source.fetch_values(  # type: ignore
                pack_ids(subjects), f)) for f in FIELDS}
        finally:
            await source.aclose()
    with spy as scanned:
        got = asyncio.run(run())
    assert scanned.call_count == len(FIELDS)  # 7 subjects, 6 rows: one scan per field
    held = [True, False, True, False, False, False, True]
    assert got["f"] == ([0.0, 0.0, 2.5, 0.0, 0.0, 0.0, 2.5], [False, *held[1:]])
    assert got["i"] == ([3.0, 0.0, -1.0, 0.0, 0.0, 0.0, -1.0], held)  # int(): truncated
    assert got["b"] == ([1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], held)
    assert got["c"] == ([0.0, 0.0, 2.0, 0.0, 0.0, 0.0, 2.0], [False, *held[1:]])


def test_scan_finds_no_id_that_is_not_normalised(tmp_path: Path) -> None:
    odd = ["1101011990010100AB", POOL[0][:17] + "x"]  # both have key -1, as would the ids
    path = _table(tmp_path / "t.db", [(pid, 1, 1.0, 1, "1", "1") for pid in odd])
    source = SqliteSource(SCHEMA, path, "t")

    async def run() -> tuple[np.ndarray, np.ndarray]:
        try:
            return await source.fetch_values(pack_ids([*odd, POOL[0]]), "f")
        finally:
            await source.aclose()
    with mock.patch.object(_sqlite_source, "SCAN_SHARE", ABOVE):
        values, found = asyncio.run(run())
    assert values.tolist() == [0.0] * 3 and found.tolist() == [False] * 3


@pytest.mark.parametrize("share", [BELOW, ABOVE])
def test_non_numeric_values_name_the_field_not_the_value(tmp_path: Path, share: int) -> None:
    path = _table(tmp_path / "t.db", [(POOL[0], 1, 1.0, 1, "Zhang San", "x"),
                                      (POOL[1], 2, 2.0, 0, "3", "4")])
    source = SqliteSource(SCHEMA, path, "t", decoders={"c": _halve})
    fields = ["s", "c"] if share == ABOVE else ["s"]  # below, a decoder raises from fetch

    async def run(field: str) -> None:
        await source.fetch_values(pack_ids([POOL[1], POOL[0]]), field)
    with mock.patch.object(_sqlite_source, "SCAN_SHARE", share):
        for field in fields:
            with pytest.raises(ValueError, match=f"^{field}: ") as info:
                asyncio.run(run(field))
            assert "Zhang" not in str(info.value) and "'x'" not in str(info.value)
            assert info.value.__cause__ is None and info.value.__suppress_context__


def test_column_values_convert_like_float_and_keep_nan_present() -> None:
    raw = [None, 2**70, 2**53 + 1, True, False, "1_000", " 1.5 ", "nan", math.inf, None, 3]
    values, found = column_values(raw)
    want = [0.0 if v is None else float(v) for v in raw]
    assert found.tolist() == [v is not None for v in raw]
    np.testing.assert_array_equal(values, want)  # NaN stays NaN, for encrypt to refuse
    assert math.isnan(values[7]) and values[8] == math.inf
    for bad in (["1", [1.0, 2.0]], [[1.0]], [{}], [10**400], ["ten"]):
        with pytest.raises(ValueError, match="^income: got a value float"):
            column_values(bad, "income")
    values, found = column_values([None] * 3)
    assert values.tolist() == [0.0] * 3 and not found.any()


def test_large_table_scan_equals_fetch_column(tmp_path: Path) -> None:
    ids = [_with_check(f"3204021985{n:07d}") for n in range(3000)]
    rows = [(pid, n, n / 7 if n % 5 else None, n % 3, str(n), str(n)) for n, pid in
            zip(itertools.count(), ids)]
    later = [(pid, -n, n + 0.5, 1, str(-n), None) for pid, n, *_ in rows[::29]]
    path = _table(tmp_path / "t.db", rows[::-1] + later)  # unsorted; duplicates: later wins
    source = SqliteSource(SCHEMA, path, "t", decoders={"c": _halve})
    with mock.patch.object(_sqlite_source, "SCAN_BATCH", 500):  # 7 batches
        asyncio.run(_compare(source, ids[::2] + OUTSIDERS, list(FIELDS)))


def test_a_started_scan_serves_the_ids_that_come_later(tmp_path: Path) -> None:
    path = _table(tmp_path / "t.db", [(POOL[i], i, i + 0.5, 1, str(i), str(i))
                                      for i in range(6)])
    source = SqliteSource(SCHEMA, path, "t")

    async def run() -> tuple[list[float], list[bool], bool]:
        try:
            read = await source.start_values("f", 4)  # 4 of 6 rows: scans ahead
            ahead = isinstance(read, ScannedColumn)
            await asyncio.sleep(0)  # the ids "arrive" after the scan started
            values, found = await read.values(pack_ids([POOL[3], OUTSIDERS[0], POOL[1]]))
            read.close()
            unused = await source.start_values("f", 4)
            unused.close()  # closed without values(): the scan is dropped, nothing hangs
            return values.tolist(), found.tolist(), ahead
        finally:
            await source.aclose()
    assert asyncio.run(run()) == ([3.5, 0.0, 1.5], [True, False, True], True)


@pytest.mark.parametrize("share", [BELOW, ABOVE])
def test_encrypt_looks_ids_up_while_checking_them_with_the_outcome_of_checking_first(
        tmp_path: Path, share: int) -> None:
    """Encrypt validates the ids and looks them up at once: valid ids give the lookup of
    those ids; lower-case ``x`` ids (normalised by the check) give the lookup of the
    normalised ids, as checking first did; a bad id refuses the call, naming its position."""
    from connectors.sdk._compute_service import PartnerComputeService
    from gateway.errors import InvalidArgument

    path = _table(tmp_path / "t.db", [(pid, float(n), 0, 0, "", "") for n, pid in
                                      enumerate(POOL)])
    with_x = [p for p in POOL if p.endswith("X")]
    wanted = [*POOL[:6], *OUTSIDERS[:2]]

    async def scenario() -> None:
        source = SqliteSource(SCHEMA, path, "t")
        try:
            for subjects, reference in ((wanted, wanted),
                                        ([p[:17] + "x" for p in with_x], with_x)):
                read = await source.start_values("i", len(subjects))
                try:
                    values, found = await PartnerComputeService._looked_up(
                        read, pack_ids(subjects))
                finally:
                    read.close()
                want, want_found = await source.fetch_values(pack_ids(reference), "i")
                assert found.tolist() == want_found.tolist() and any(want_found)
                np.testing.assert_array_equal(values, want)
            bad = [*POOL[:3], POOL[3][:17] + "0" if POOL[3][17] != "0" else POOL[3][:17] + "1"]
            read = await source.start_values("i", len(bad))
            try:
                with pytest.raises(InvalidArgument) as caught:
                    await PartnerComputeService._looked_up(read, pack_ids(bad))
            finally:
                read.close()
            assert "subjects[3]" in str(caught.value.details()) and bad[3] not in str(
                caught.value.details())
        finally:
            await source.aclose()

    with mock.patch.object(_sqlite_source, "SCAN_SHARE", share):
        asyncio.run(scenario())
