"""Connectors as witnesses, over their real ``Cosign`` RPC: they cosign only checkpoints signed by
the log key that extend what they cosigned before, persist that state first, and the gateway's
rounds recover from a restart through the WITNESS_SIZE error detail."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from pgw_officer_harness import (
    LOAN,
    LoopThread,
    append_entries,
    entry,
    fresh_store,
    start_stack,
)

import connectors.sdk._witness as witness_module
from gateway.audit import (
    SIG_TYPE_COSIGNATURE_V1,
    Checkpoint,
    NoteSigner,
    NoteVerifier,
    get_hasher,
    open_note,
    sign_note,
    verify_cosignatures,
)
from gateway.audit._tree import MerkleTree
from gateway.config import Config
from gateway.errors import GatewayError
from gateway.keys import load_private_key, load_public_key
from gateway.pb.pgw.v1 import connector_pb2, connector_pb2_grpc
from gateway.server import Running, start_partner
from gateway.status import bad_request_fields, error_info

PARTNER = "bank"


@dataclasses.dataclass
class WitnessUnderTest:
    stub: connector_pb2_grpc.ConnectorServiceStub
    state: Path
    cfg: Config

    def cosign(self, note: str, old_size: int, proof: list[bytes] | None = None
               ) -> connector_pb2.CosignResponse:
        return self.stub.Cosign(connector_pb2.CosignRequest(
            checkpoint=note, old_size=old_size, consistency_proof=proof or []), timeout=10)

    def held(self) -> dict:  # type: ignore[type-arg]
        return json.loads(self.state.read_text())

    def verifier(self) -> NoteVerifier:
        return NoteVerifier(self.cfg.witness_name(PARTNER), load_public_key(
            self.cfg.connector(PARTNER).witness_public_key), SIG_TYPE_COSIGNATURE_V1)


@pytest.fixture
def witness(loop: LoopThread, base_cfg: Config, tmp_path: Path) -> Iterator[WitnessUnderTest]:
    state = tmp_path / "witness-state" / "bank.json"
    cfg = dataclasses.replace(base_cfg, connectors={
        p: dataclasses.replace(c, witness_state=state) for p, c in base_cfg.connectors.items()})
    running: Running = loop.run(start_partner(cfg, PARTNER, listen="127.0.0.1:0"))
    channel = grpc.insecure_channel(f"127.0.0.1:{running.port}")
    try:
        yield WitnessUnderTest(connector_pb2_grpc.ConnectorServiceStub(channel), state, cfg)
    finally:
        channel.close()
        loop.run(running.stop(0.5))


def refused(fn) -> grpc.RpcError:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as info:
        fn()
    return info.value


def tree_of(entries: list[bytes]) -> MerkleTree:
    return MerkleTree.from_leaves(get_hasher("sha256"), entries)


@pytest.fixture
def real_log(loop: LoopThread, base_cfg: Config, store) -> tuple[list[bytes], list[str]]:  # type: ignore[no-untyped-def]
    """A log of 8 entries on the backend under test, one checkpoint per entry."""
    entries = [entry(i, org="hpf-changzhou") for i in range(8)]
    return entries, loop.run(append_entries(store.dsn, base_cfg, entries))


def test_a_witness_cosigns_consistent_checkpoints_and_persists_first(witness, real_log) -> None:  # type: ignore[no-untyped-def]
    entries, notes = real_log
    answer = witness.cosign(notes[4], 0)                          # size 5, trust on first use
    assert answer.size == 5
    assert witness.held()["size"] == 5
    assert bytes.fromhex(witness.held()["root"]) == tree_of(entries).root(5)
    verify_cosignatures(notes[4] + answer.cosignature, [witness.verifier()], 1)
    proof = tree_of(entries).consistency_proof(5, 8)
    answer = witness.cosign(notes[7], 5, proof)
    assert answer.size == 8 and witness.held()["size"] == 8
    verify_cosignatures(notes[7] + answer.cosignature, [witness.verifier()], 1)


def test_a_witness_refuses_a_forked_history(witness, real_log, loop, base_cfg, tmp_path,  # type: ignore[no-untyped-def]
                                            kind) -> None:
    """A second log with the same key and origin but other entries: validly signed, inconsistent."""
    entries, notes = real_log
    witness.cosign(notes[4], 0)
    forked = [entries[0], entries[1], entry(99, org="forger"), *entries[3:]]
    with fresh_store(kind, tmp_path / "fork") as fork:
        fork_notes = loop.run(append_entries(fork.dsn, base_cfg, forked))
    # larger size, with the fork's own (honest) consistency proof
    err = refused(lambda: witness.cosign(fork_notes[7], 5,
                                         tree_of(forked).consistency_proof(5, 8)))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "not consistent" in err.details() and "refused" in err.details()
    # same size, another root
    err = refused(lambda: witness.cosign(fork_notes[4], 5))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "not consistent" in err.details()
    # the real log's proof with the fork's checkpoint
    err = refused(lambda: witness.cosign(fork_notes[7], 5,
                                         tree_of(entries).consistency_proof(5, 8)))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert witness.held()["size"] == 5
    assert bytes.fromhex(witness.held()["root"]) == tree_of(entries).root(5)


def test_a_witness_refuses_a_rollback(witness, real_log) -> None:  # type: ignore[no-untyped-def]
    _, notes = real_log
    witness.cosign(notes[4], 0)
    err = refused(lambda: witness.cosign(notes[2], 5))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "rollback" in err.details()
    assert witness.held()["size"] == 5


def test_a_witness_refuses_a_checkpoint_not_signed_by_the_log_key(witness, real_log,  # type: ignore[no-untyped-def]
                                                                  base_cfg) -> None:
    entries, notes = real_log
    witness.cosign(notes[4], 0)
    body = Checkpoint(base_cfg.audit_origin, 8, tree_of(entries).root()).body()
    impostor = NoteSigner.generate(base_cfg.audit_origin)           # same name, other key
    tampered = notes[7][:-8] + ("A" if notes[7][-8] != "A" else "B") + notes[7][-7:]
    for note in (sign_note(body, [impostor]), tampered):
        err = refused(lambda note=note: witness.cosign(
            note, 5, tree_of(entries).consistency_proof(5, 8)))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert bad_request_fields(err) == ["checkpoint"]
    # a witness (0x04) key cannot stand in for the log key either
    wkey = NoteSigner(base_cfg.witness_name(PARTNER), load_private_key(
        base_cfg.connector(PARTNER).witness_key), SIG_TYPE_COSIGNATURE_V1)
    with pytest.raises(ValueError):
        sign_note(body, [wkey])
    assert witness.held()["size"] == 5


def test_a_stale_old_size_is_answered_with_the_real_size(witness, real_log) -> None:  # type: ignore[no-untyped-def]
    entries, notes = real_log
    witness.cosign(notes[4], 0)
    err = refused(lambda: witness.cosign(notes[7], 0))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_info(err, "WITNESS_SIZE") == {"size": "5"}
    assert witness.cosign(notes[7], 5, tree_of(entries).consistency_proof(5, 8)).size == 8


def test_the_state_is_persisted_before_the_cosignature_is_made(base_cfg, real_log, tmp_path,  # type: ignore[no-untyped-def]
                                                               monkeypatch) -> None:
    entries, notes = real_log
    state = tmp_path / "w" / "state.json"
    w = witness_module.Witness(
        NoteSigner(base_cfg.witness_name(PARTNER), load_private_key(
            base_cfg.connector(PARTNER).witness_key), SIG_TYPE_COSIGNATURE_V1),
        NoteVerifier(base_cfg.audit_origin, load_public_key(base_cfg.log_public_key)),
        origin=base_cfg.audit_origin, hash_name="sha256", state_path=state)
    seen: list[int] = []
    real_cosign = witness_module.cosign

    def spy(checkpoint, signer, timestamp):  # type: ignore[no-untyped-def]
        seen.append(json.loads(state.read_text())["size"])   # on disk already
        return real_cosign(checkpoint, signer, timestamp)

    monkeypatch.setattr(witness_module, "cosign", spy)
    w.cosign(notes[4], 0, [])
    assert seen == [5]

    def broken_disk(_self, _state) -> None:  # type: ignore[no-untyped-def]
        raise OSError("disk full")

    monkeypatch.setattr(witness_module.Witness, "_persist", broken_disk)
    with pytest.raises(OSError):
        w.cosign(notes[5], 5, tree_of(entries).consistency_proof(5, 6))
    assert seen == [5]                                        # no cosignature without state


def test_witnessing_recovers_after_a_gateway_restart(loop, base_cfg, kind, tmp_path,  # type: ignore[no-untyped-def]
                                                     people, monkeypatch) -> None:
    calls: list[int] = []
    real = witness_module.Witness.cosign
    mine = tmp_path / "state"

    def spy(self, note, old_size, proof):  # type: ignore[no-untyped-def]
        if mine in self.state_path.parents:   # only this stack's witnesses: the session's
            calls.append(old_size)            # other stacks keep witnessing in this process
        return real(self, note, old_size, proof)

    monkeypatch.setattr(witness_module.Witness, "cosign", spy)
    with fresh_store(kind, tmp_path / "stores") as target:
        s = start_stack(loop, base_cfg, kind, target.dsn, tmp_path / "state")
        try:
            s.query("loan-eligibility", people.loan[:1], LOAN)
            first = s.settle()
            s.restart_gateway()                       # forgets what the witnesses hold
            calls.clear()
            s.query("loan-eligibility", people.loan[1:2], LOAN)
            second = s.settle()
            assert second.size > first.size
            log_key = NoteVerifier(base_cfg.audit_origin, load_public_key(base_cfg.log_public_key))
            open_note(second.checkpoint, [log_key])
            witnesses = [NoteVerifier(base_cfg.witness_name(p), load_public_key(
                c.witness_public_key), SIG_TYPE_COSIGNATURE_V1)
                for p, c in base_cfg.connectors.items()]
            n = len(witnesses)  # every configured connector witnesses
            assert len(verify_cosignatures(second.checkpoint, witnesses, n)) == n
            # each witness was first asked with old_size 0, refused with WITNESS_SIZE, then
            # asked again from the size it really holds
            assert calls.count(0) == n
            assert set(calls) - {0} == {first.size}
        finally:
            s.close()


def test_gateway_errors_are_not_cosigned(witness) -> None:  # type: ignore[no-untyped-def]
    err = refused(lambda: witness.cosign("not a note", 0))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_fields(err) == ["checkpoint"]
    assert not witness.state.exists()
    assert issubclass(witness_module.StaleWitnessView, GatewayError)
