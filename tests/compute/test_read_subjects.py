"""The gateway's check of a compute's packed subjects, on both sides of ``INLINE_IDS``.

Above it the duplicate check runs beside the validation, on the raw bytes, and again on the
normalised ones when validation changed them (a lower-case ``x``): the outcome must be the
one of the sequential check whatever the size (same ids, same refusals, same messages).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date, timedelta

import pytest

from gateway._compute_decision import Refused
from gateway._compute_linear import read_subjects
from gateway.packed_ids import INLINE_IDS, WIDTH, pack_ids
from gateway.pb.pgw.v1 import compute_pb2
from gateway.validate import person_id_check_char

SIZES = [40, INLINE_IDS + 40]


def _people(n: int) -> list[str]:
    born = [date(1980, 1, 1) + timedelta(days=i // 1000) for i in range(n)]
    first = [f"320402{b:%Y%m%d}{i % 1000:03d}" for i, b in enumerate(born)]
    return [f + person_id_check_char(f) for f in first]


def _read(ids: list[str], count: int | None = None) -> bytes:
    data = pack_ids(ids)

    async def stream() -> AsyncIterator[compute_pb2.ComputeRequest]:
        for i in range(0, len(data), 1000 * WIDTH):
            yield compute_pb2.ComputeRequest(subjects=compute_pb2.SubjectChunk(
                ids=data[i:i + 1000 * WIDTH]))
    header = compute_pb2.ComputeHeader(subject_count=count or len(ids))
    return asyncio.run(read_subjects(header, stream())).data


def _violations(info: pytest.ExceptionInfo[Refused]) -> list[tuple[str, str]]:
    return [(v.field, v.description) for v in info.value.error.violations]


@pytest.mark.parametrize("n", SIZES)
def test_distinct_ids_pass_normalised(n: int) -> None:
    people = _people(n)
    with_x = [i for i, p in enumerate(people) if p.endswith("X")]
    assert with_x  # the lower-case path is exercised
    sent = [p[:17] + "x" if i in with_x[:3] else p for i, p in enumerate(people)]
    assert _read(sent) == pack_ids(people)


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("lower", [False, True])
def test_a_repeated_id_is_refused_even_in_other_case(n: int, lower: bool) -> None:
    people = _people(n)
    x = next(p for p in people if p.endswith("X"))
    again = x[:17] + "x" if lower else x  # x and X are one person: still a repeat
    with pytest.raises(Refused) as info:
        _read([*people[:-1], again])
    assert _violations(info) == [("subjects", "the same id is listed twice")]


@pytest.mark.parametrize("n", SIZES)
def test_a_bad_id_is_named_by_position_not_a_duplicate(n: int) -> None:
    people = _people(n)
    bad = people[:]
    bad[7] = bad[7][:17] + ("0" if bad[7][17] != "0" else "1")  # wrong check character
    bad[9] = bad[7]  # a bad id twice: the validation's refusal, not "listed twice"
    with pytest.raises(Refused) as info:
        _read(bad)
    fields = [f for f, _ in _violations(info)]
    assert fields == ["subjects[7]", "subjects[9]"]
    assert all("not a GB 11643-1999 id" in d for _, d in _violations(info))
    assert all(people[7][:12] not in d for _, d in _violations(info))
