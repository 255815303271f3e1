"""Compute subjects on the wire: packed 18-byte ids, each malformation refused by name.

Raw gRPC calls to the gateway's ComputeService with hand-made request streams (the SDK would
refuse to send most of these), against the shared stack on the shipped agreements.
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from pgw_compute_harness import RawData, Stack

from gateway.client import ComputeClient
from gateway.pb.pgw.v1 import compute_pb2, compute_pb2_grpc


def violations(err: grpc.RpcError) -> list[tuple[str, str]]:
    status: status_pb2.Status | None = rpc_status.from_call(err)  # type: ignore[arg-type]
    assert status is not None
    out = []
    for detail in status.details:
        br = error_details_pb2.BadRequest()
        if detail.Unpack(br):
            out.extend((v.field, v.description) for v in br.field_violations)
    return out


def call(stack: Stack, count: int, chunks: list[bytes]) -> grpc.RpcError:
    header = compute_pb2.ComputeHeader(
        purpose="loan-risk-scoring", public_context=stack.keys.public_material(),
        linear=compute_pb2.LinearOp(model="hpf-loan-risk"), subject_count=count)

    def requests() -> Iterator[compute_pb2.ComputeRequest]:
        yield compute_pb2.ComputeRequest(header=header)
        for chunk in chunks:
            yield compute_pb2.ComputeRequest(subjects=compute_pb2.SubjectChunk(ids=chunk))

    with grpc.insecure_channel(stack.address) as channel:
        stub = compute_pb2_grpc.ComputeServiceStub(channel)
        try:
            for _ in stub.Compute(requests(), timeout=60,
                                  metadata=[("authorization", f"Bearer {stack.token()}")]):
                pass
        except grpc.RpcError as err:
            return err
    raise AssertionError("the call was allowed")


@pytest.fixture(scope="module")
def people(raw: RawData) -> list[str]:
    return raw.in_all[:6]


def test_bad_ids_are_named_by_position_never_quoted(stack: Stack, people: list[str]) -> None:
    bad_check = people[1][:17] + ("0" if people[1][17] != "0" else "1")
    bad_date = people[2][:10] + "13" + people[2][12:]
    ids = [people[0], bad_check, bad_date, "32040219900101ABCD"]
    err = call(stack, 4, ["".join(ids).encode()])
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    got = violations(err)
    assert [f for f, _ in got] == ["subjects[1]", "subjects[2]", "subjects[3]"]
    assert "checksum mismatch" in got[0][1] and "impossible birth date" in got[1][1]
    assert "non-digit character at position 15" in got[2][1]
    text = err.details() + repr(got)
    assert not any(i in text for i in ids)


@pytest.mark.parametrize(("count", "extra", "want"), [
    (3, b"", "got 2 ids, want header.subject_count 3"),
    (2, b"1234", "got 40 bytes, want header.subject_count 2"),
    (1, b"", "got 2 ids, want header.subject_count 1"),
])
def test_count_and_length_must_match(stack: Stack, people: list[str], count: int,
                                     extra: bytes, want: str) -> None:
    err = call(stack, count, ["".join(people[:2]).encode() + extra])
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, d in violations(err) if want in d] == ["subjects"]


def test_duplicate_ids_refused(stack: Stack, people: list[str]) -> None:
    ids = [people[0], people[1], people[0]]
    err = call(stack, 3, [ids[0].encode(), (ids[1] + ids[2]).encode()])  # split across chunks
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(err) == [("subjects", "the same id is listed twice")]


def test_lower_case_x_is_the_same_person(stack: Stack, raw: RawData) -> None:
    with_x = [p for p in raw.in_all if p.endswith("X")][:2]
    assert with_x, "the synthetic data has ids ending in X"
    upper = stack.score(with_x)
    lower = stack.score([p[:17] + "x" for p in with_x])
    assert lower.scores == pytest.approx(upper.scores, abs=1e-6)
    assert lower.present == upper.present


def test_the_sdk_refuses_malformed_ids_before_sending(stack: Stack, people: list[str]) -> None:
    async def go() -> None:
        async with ComputeClient(stack.address, stack.token(), keys=stack.keys) as client:
            await client.score("hpf-loan-risk", [people[0], people[1][:17]])

    with pytest.raises(ValueError, match=r"subjects\[1\]: want 18 ASCII characters, got 17"):
        stack.loop.run(go())
