"""Packed person ids: the vectorised checks agree with the scalar ones, id by id."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.errors import InvalidArgument
from gateway.packed_ids import (
    PackedIds,
    has_duplicates,
    id_keys,
    ids_digest,
    pack_ids,
    unpack_ids,
    validate_packed_ids,
)
from gateway.validate import validate_person_ids

TODAY = dt.date(2026, 11, 25)
WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def with_check(first17: str) -> str:
    total = sum(int(c) * w for c, w in zip(first17, WEIGHTS, strict=True))
    return first17 + "10X98765432"[total % 11]


_valid = st.builds(
    lambda region, day, seq: with_check(f"{region:06d}{day:%Y%m%d}{seq:03d}"),
    st.integers(110000, 659999), st.dates(dt.date(1900, 1, 1), TODAY), st.integers(0, 999))
# 18 bytes that are often almost an id: a valid one with one byte changed, or anything
_mangled = st.builds(lambda pid, pos, ch: pid[:pos] + ch + pid[pos + 1:], _valid,
                     st.integers(0, 17), st.sampled_from("0123456789Xxa /\u00e9"))
_ids = st.lists(st.one_of(_valid, _mangled, _valid.map(lambda p: p[:17] + p[17].lower())),
                min_size=1, max_size=80)


def _outcome(call: object) -> tuple[str, object]:
    try:
        return "ok", call()  # type: ignore[operator]
    except InvalidArgument as err:
        return "refused", [(v.field, v.description) for v in err.violations]


@given(_ids)
def test_packed_validation_equals_the_scalar_one(ids: list[str]) -> None:
    data = "".join(ids).encode("latin-1", "replace")
    if len(data) != 18 * len(ids):  # non-latin-1 text cannot be packed: skip
        return
    scalar = _outcome(lambda: validate_person_ids(ids, today=TODAY))
    packed = _outcome(lambda: validate_packed_ids(data, today=TODAY))
    if scalar[0] == "refused":
        assert packed == ("refused", scalar[1][:20])  # type: ignore[index]
    else:
        assert packed == ("ok", "".join(scalar[1]).encode())  # type: ignore[arg-type]


def test_ragged_buffer_is_refused_by_length() -> None:
    with pytest.raises(InvalidArgument) as info:
        validate_packed_ids(b"1" * 37)
    assert info.value.violations[0].field == "subjects"
    assert "got 37 bytes, want a multiple of 18" in info.value.violations[0].description


def test_at_most_twenty_violations() -> None:
    with pytest.raises(InvalidArgument) as info:
        validate_packed_ids(b"A" * 18 * 50)
    assert [v.field for v in info.value.violations] == [f"subjects[{i}]" for i in range(20)]


@given(st.lists(_valid, min_size=1, max_size=60), st.lists(_valid, min_size=1, max_size=60))
def test_keys_equal_exactly_when_ids_equal(a: list[str], b: list[str]) -> None:
    ka, ok_a = id_keys(pack_ids(a))
    kb, ok_b = id_keys(pack_ids(b))
    assert ok_a.all() and ok_b.all()
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            assert (ka[i] == kb[j]) == (x == y)
    assert has_duplicates(pack_ids(a)) == (len(set(a)) != len(a))


def test_malformed_rows_get_no_key() -> None:
    good = with_check("32040219900101001")
    keys, ok = id_keys((good + good[:17] + "x" + "3204021990010100A1").encode())
    assert ok.tolist() == [True, False, False]
    assert keys[1] == keys[2] == -1 and keys[0] >= 0


def test_pack_refuses_wrong_shapes_by_position() -> None:
    good = with_check("32040219900101001")
    with pytest.raises(ValueError, match=r"subjects\[1\]: want 18 ASCII characters, got 17"):
        pack_ids([good, good[:17]])
    with pytest.raises(ValueError, match=r"subjects\[0\].*non-ASCII"):
        pack_ids(["\u00e9" * 18, good])
    with pytest.raises(ValueError, match=r"subjects\[0\]: .*got 19"):  # ragged, sums to 54
        pack_ids([good + "1", good[:17], good])
    assert pack_ids([]) == b""


def test_packed_ids_read_as_strings() -> None:
    ids = [with_check(f"3204021990010100{i}") for i in range(5)]
    packed = PackedIds(pack_ids(ids))
    assert len(packed) == 5 and list(packed) == ids and packed[-1] == ids[-1]
    assert packed[1:3] == ids[1:3] and unpack_ids(packed.data) == ids
    assert ids_digest(packed.data) == hashlib.sha256("".join(ids).encode()).digest()
    with pytest.raises(IndexError):
        packed[5]
    with pytest.raises(ValueError, match="multiple of 18"):
        PackedIds(b"123")
