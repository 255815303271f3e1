"""The wire against docs/privacy.md: what the hub receives, and what the requester receives.

A test double of the gateway's JoinService records every message the hub receives from the
requester and from the partner (the ``observe_*`` seams); the client's reads are recorded too.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from typing import Any

import pytest
from pgw_join_harness import isolated_cfg, start_stack
from pgw_join_support import HPF, join, sample

from gateway.join_service import JoinService
from gateway.pb.pgw.v1 import join_pb2
from gateway.privacy import hash_to_point

ID_RE = re.compile(rb"[0-9]{17}[0-9X]")


class TappedJoinService(JoinService):
    received: list[Any] = []

    def observe_requester(self, message: join_pb2.JoinRequest) -> None:
        TappedJoinService.received.append(message)

    def observe_partner(self, message: join_pb2.PartnerJoinResponse) -> None:
        TappedJoinService.received.append(message)


@pytest.fixture(scope="module")
def tapped(loop, cfg, tmp_path_factory) -> Iterator[Any]:
    import gateway.server

    real = gateway.server.JoinService
    gateway.server.JoinService = TappedJoinService  # type: ignore[misc]
    try:
        s = start_stack(loop, isolated_cfg(cfg, tmp_path_factory.mktemp("tapped")))
    finally:
        gateway.server.JoinService = real  # type: ignore[misc]
    yield s
    s.close()


def _values(message: Any) -> Iterator[bytes]:
    """Every 32-byte value in the message's point chunks, and its other byte strings."""
    for _, value in message.ListFields():
        if isinstance(value, join_pb2.PointChunk):
            packed = value.packed
            yield from (packed[i:i + 32] for i in range(0, len(packed), 32))
        elif hasattr(value, "ListFields"):
            yield from _values(value)
        elif isinstance(value, bytes):
            yield value


@pytest.mark.parametrize(("mode", "output"), [
    ("ecdh-psi", "membership"), ("ecdh-psi", "cardinality"),
    ("ecdh-psi", "intersection-sum"), ("keyed-hash", "membership")])
def test_hub_never_receives_an_id_or_its_plain_hash(tapped, run, active, people, mode,
                                                    output) -> None:
    items, _ = sample(active, people, 150, 0.5, seed=3)
    TappedJoinService.received.clear()
    run(join(tapped.address, tapped.token(HPF), mode, output, items))
    assert TappedJoinService.received
    everyone = set(items) | set(active)
    forbidden = set()
    for pid in everyone:
        raw = pid.encode()
        forbidden |= {hashlib.sha256(raw).digest(), hash_to_point(raw), raw.ljust(32, b"\0")}
    kinds = set()
    for message in TappedJoinService.received:
        kinds.add(message.WhichOneof("kind"))
        data = message.SerializeToString()
        assert not any(m.group() in {p.encode() for p in everyone}
                       for m in ID_RE.finditer(data)), "an id in clear"
        for value in _values(message):
            assert value not in forbidden, "an id's plain hash or point"
    assert "items" in kinds  # the requester's side was captured
    assert kinds & {"partner_points", "double_blinded"}  # and the partner's


def test_requester_never_receives_per_item_ciphertexts(stack, run, active, people,
                                                       monkeypatch) -> None:
    from gateway.client import _join

    seen: list[join_pb2.JoinResponse] = []
    real_read = _join._Run.read

    async def read(self: Any) -> join_pb2.JoinResponse:
        msg = await real_read(self)
        seen.append(msg)
        return msg

    monkeypatch.setattr(_join._Run, "read", read)
    items, truth = sample(active, people, 120, 0.5, seed=4)
    result = run(join(stack.address, stack.token(HPF), "ecdh-psi", "intersection-sum", items))
    assert result.match_count == len(truth)
    kinds = [m.WhichOneof("kind") for m in seen]
    assert set(kinds) <= {"accepted", "progress", "partner_points", "result"}
    assert kinds.count("result") == 1
    big = [m for m in seen if m.ByteSize() > 64 * 1024 and m.WhichOneof("kind") != "result"]
    assert all(len(m.partner_points.packed) % 32 == 0 for m in big)
    assert seen[-1].result.encrypted_sum  # the one ciphertext: Enc(total), from the hub
