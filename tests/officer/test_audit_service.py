"""The AuditService over real gRPC, on both backends: auditors only, signed and cosigned
checkpoints, entry ranges, search (by person without raw ids), proofs and export."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import grpc
import pytest
from pgw_officer_harness import HOUSING, HPF, LOAN, WITHDRAWAL, Stack, metadata

from gateway.audit import (
    SIG_TYPE_COSIGNATURE_V1,
    Checkpoint,
    NoteVerifier,
    get_hasher,
    open_note,
    verify_consistency,
    verify_cosignatures,
    verify_inclusion,
)
from gateway.audit._tree import MerkleTree
from gateway.keys import load_public_key
from gateway.pb.pgw.v1 import audit_pb2
from gateway.status import bad_request_fields

REQUESTS = {
    "GetCheckpoint": audit_pb2.GetCheckpointRequest(),
    "GetEntries": audit_pb2.GetEntriesRequest(start=0, end=1),
    "Search": audit_pb2.SearchRequest(purpose="loan-eligibility"),
    "GetInclusionProof": audit_pb2.GetInclusionProofRequest(index=0),
    "GetConsistencyProof": audit_pb2.GetConsistencyProofRequest(old_size=1),
    "Export": audit_pb2.ExportRequest(),
}


def call(stack: Stack, method: str, request, token: str | None = ""):  # type: ignore[no-untyped-def]
    tok = stack.auditor() if token == "" else token
    answer = getattr(stack.audit_stub, method)(request, metadata=metadata(tok), timeout=20)
    return list(answer) if method == "Export" else answer


def rpc_error(fn) -> grpc.RpcError:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as info:
        fn()
    return info.value


def log_key(stack: Stack) -> NoteVerifier:
    return NoteVerifier(stack.cfg.audit_origin, load_public_key(stack.cfg.log_public_key))


def opened(stack: Stack, note: str) -> Checkpoint:
    return Checkpoint.parse(open_note(note, [log_key(stack)]).body)


def all_entries(stack: Stack) -> list[dict]:  # type: ignore[type-arg]
    size = stack.settle().size
    got: list[audit_pb2.LogEntry] = []
    while len(got) < size:
        got += call(stack, "GetEntries", audit_pb2.GetEntriesRequest(start=len(got), end=size)
                    ).entries
    assert [e.index for e in got] == list(range(size))
    return [json.loads(e.entry) for e in got]


def search(stack: Stack, **criteria) -> list[int]:  # type: ignore[no-untyped-def]
    answer = call(stack, "Search", audit_pb2.SearchRequest(limit=1000, **criteria))
    return [e.index for e in answer.entries]


@pytest.mark.parametrize("method", sorted(REQUESTS))
@pytest.mark.parametrize("role", ["requester", "policy-admin", "integrator", None])
def test_only_auditors_may_call(stack: Stack, method: str, role: str | None) -> None:
    token = None if role is None else stack.token(HPF, role)
    err = rpc_error(lambda: call(stack, method, REQUESTS[method], token))
    want = grpc.StatusCode.UNAUTHENTICATED if role is None else grpc.StatusCode.PERMISSION_DENIED
    assert err.code() == want, err.details()
    call(stack, method, REQUESTS[method])   # the same request as an auditor succeeds


def test_checkpoint_is_signed_by_the_log_key_and_cosigned(stack: Stack) -> None:
    cp = stack.settle()
    checkpoint = opened(stack, cp.checkpoint)
    assert checkpoint.origin == stack.cfg.audit_origin and checkpoint.size == cp.size
    witnesses = [NoteVerifier(stack.cfg.witness_name(p), load_public_key(c.witness_public_key),
                              SIG_TYPE_COSIGNATURE_V1) for p, c in stack.cfg.connectors.items()]
    names = verify_cosignatures(cp.checkpoint, witnesses, 3)
    assert sorted(names) == sorted(w.name for w in witnesses)
    assert sorted(cp.witnesses) == sorted(stack.cfg.connectors)
    # the root is the one recomputed from the entries
    tree = MerkleTree(get_hasher(stack.cfg.audit_hash))
    for e in call(stack, "GetEntries", audit_pb2.GetEntriesRequest(start=0, end=cp.size)).entries:
        tree.append(tree.hasher.leaf(e.entry))
    assert tree.root() == checkpoint.root


@pytest.mark.parametrize(("start", "end", "field"), [
    (3, 2, "end"), (0, 10**6, "end"), (10**6, 10**6 + 1, "end"), (2**63, 2**64 - 1, "end")])
def test_get_entries_rejects_bad_ranges(stack: Stack, start: int, end: int, field: str) -> None:
    err = rpc_error(lambda: call(stack, "GetEntries", audit_pb2.GetEntriesRequest(start=start,
                                                                                  end=end)))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.details()
    assert bad_request_fields(err) == [field]


def test_get_entries_edges(stack: Stack) -> None:
    size = stack.settle().size
    assert call(stack, "GetEntries", audit_pb2.GetEntriesRequest(start=size, end=size)).entries \
        == []
    last = call(stack, "GetEntries", audit_pb2.GetEntriesRequest(start=size - 1, end=size))
    assert [e.index for e in last.entries] == [size - 1]


def test_search_by_org_purpose_partner_decision(stack: Stack) -> None:
    entries = all_entries(stack)

    def want(pred) -> list[int]:  # type: ignore[no-untyped-def]
        return [i for i, e in enumerate(entries) if pred(e)]

    cases = [
        ({"requester_org": HOUSING}, lambda e: e["requester_org"] == HOUSING),
        ({"requester_org": HPF}, lambda e: e["requester_org"] == HPF),
        ({"purpose": "withdrawal-review"}, lambda e: e["purpose"] == "withdrawal-review"),
        ({"partner": "bank"}, lambda e: "bank" in e["partners"]),
        ({"decision": "deny"}, lambda e: e["decision"] == "deny"),
        ({"requester_org": HPF, "purpose": "loan-eligibility", "decision": "allow"},
         lambda e: (e["requester_org"], e["purpose"], e["decision"]) ==
         (HPF, "loan-eligibility", "allow")),
    ]
    for criteria, pred in cases:
        expected = want(pred)
        assert expected, criteria
        assert search(stack, **criteria) == expected, criteria
    assert search(stack, requester_org="nobody") == []
    limited = call(stack, "Search", audit_pb2.SearchRequest(requester_org=HPF, limit=2))
    assert [e.index for e in limited.entries] == want(lambda e: e["requester_org"] == HPF)[:2]
    err = rpc_error(lambda: search(stack, decision="maybe"))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_fields(err) == ["decision"]


def test_search_by_time_range(stack: Stack) -> None:
    entries = all_entries(stack)
    times = [e["time"] for e in entries]
    lo, hi = times[1], times[-2]
    expected = [i for i, t in enumerate(times) if lo <= t < hi]
    assert 0 < len(expected) < len(times)
    assert search(stack, time_from=lo, time_to=hi) == expected
    assert search(stack, time_from=lo) == [i for i, t in enumerate(times) if t >= lo]
    assert search(stack, time_to=lo) == [i for i, t in enumerate(times) if t < lo]


def _parse(t: str) -> datetime:
    return datetime.strptime(t, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)




def test_search_time_from_with_an_offset_is_an_instant(stack: Stack) -> None:
    times = [_parse(e["time"]) for e in all_entries(stack)]
    lo = times[len(times) // 2]
    # The same instant as lo, written in China Standard Time: lo itself must match (inclusive).
    bound = lo.astimezone(timezone(timedelta(hours=8))).isoformat(timespec="microseconds")
    assert search(stack, time_from=bound) == [i for i, t in enumerate(times) if t >= lo]


def test_search_time_to_in_whole_seconds_is_an_instant(stack: Stack) -> None:
    times = [_parse(e["time"]) for e in all_entries(stack)]
    second = times[len(times) // 2].replace(microsecond=0)
    # entries later within that second are not before the (exclusive) bound
    to = second.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert search(stack, time_to=to) == [i for i, t in enumerate(times) if t < second]


def test_search_by_subject_finds_the_person_without_raw_ids(stack: Stack, people) -> None:  # type: ignore[no-untyped-def]
    person = people.withdrawal[0]
    response = stack.query("withdrawal-review", [person], WITHDRAWAL)
    entries = all_entries(stack)
    found = search(stack, subject=person)
    assert response.receipt.leaf_index in found
    assert found == [i for i, e in enumerate(entries)
                     if e["subject_count"] and e["requester_org"] == HPF
                     and set(e["subject_pseudonyms"]) & set(entries[response.receipt.leaf_index]
                                                            ["subject_pseudonyms"])]
    assert all(entries[i]["purpose"] == "withdrawal-review" for i in found)
    for other in people.never:
        assert search(stack, subject=other) == []
    # the lower-case check character is the same person
    assert search(stack, subject=people.loan[0].lower()) == search(stack, subject=people.loan[0])
    assert search(stack, subject=people.loan[0])
    for bad in ("12345", people.loan[0][:17] + ("0" if people.loan[0][17] != "0" else "1"),
                "x" * 18):
        err = rpc_error(lambda bad=bad: search(stack, subject=bad))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert bad_request_fields(err) == ["subject"]
        assert bad not in err.details()
    raw = b"".join(e.entry for e in call(stack, "GetEntries", audit_pb2.GetEntriesRequest(
        start=0, end=len(entries))).entries)
    for p in [*people.loan, *people.withdrawal]:
        assert p.encode() not in raw and p[:17].encode() not in raw


def test_inclusion_proofs_verify(stack: Stack) -> None:
    cp = stack.settle()
    hasher = get_hasher(stack.cfg.audit_hash)
    latest = opened(stack, cp.checkpoint)
    for index in sorted({0, cp.size // 2, cp.size - 1}):
        receipt = call(stack, "GetInclusionProof",
                       audit_pb2.GetInclusionProofRequest(index=index)).receipt
        assert (receipt.leaf_index, receipt.tree_size, receipt.hash) == \
            (index, cp.size, stack.cfg.audit_hash)
        checkpoint = opened(stack, receipt.checkpoint)
        assert checkpoint.root == latest.root
        verify_inclusion(hasher, index, cp.size, hasher.leaf(receipt.entry),
                         list(receipt.inclusion_proof), checkpoint.root)
    older = cp.size - 1
    receipt = call(stack, "GetInclusionProof",
                   audit_pb2.GetInclusionProofRequest(index=0, tree_size=older)).receipt
    verify_inclusion(hasher, 0, older, hasher.leaf(receipt.entry), list(receipt.inclusion_proof),
                     opened(stack, receipt.checkpoint).root)
    for request, field in [
            (audit_pb2.GetInclusionProofRequest(index=cp.size), "index"),
            (audit_pb2.GetInclusionProofRequest(index=0, tree_size=cp.size + 1000), "tree_size"),
            (audit_pb2.GetInclusionProofRequest(index=0, tree_size=2**64 - 1), "tree_size")]:
        err = rpc_error(lambda request=request: call(stack, "GetInclusionProof", request))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert bad_request_fields(err) == [field]


def test_consistency_proofs_verify(stack: Stack, people) -> None:  # type: ignore[no-untyped-def]
    old = stack.settle()
    stack.query("loan-eligibility", people.loan[:1], LOAN)
    stack.query("loan-eligibility", people.loan[1:2], LOAN)
    new = stack.settle()
    assert new.size == old.size + 2
    hasher = get_hasher(stack.cfg.audit_hash)
    answer = call(stack, "GetConsistencyProof",
                  audit_pb2.GetConsistencyProofRequest(old_size=old.size))
    assert (answer.old_size, answer.new_size) == (old.size, new.size)
    verify_consistency(hasher, old.size, new.size, list(answer.proof),
                       opened(stack, old.checkpoint).root, opened(stack, answer.checkpoint).root)
    one = call(stack, "GetConsistencyProof",
               audit_pb2.GetConsistencyProofRequest(old_size=1, new_size=old.size))
    first = call(stack, "GetInclusionProof",
                 audit_pb2.GetInclusionProofRequest(index=0, tree_size=1)).receipt
    verify_consistency(hasher, 1, old.size, list(one.proof), opened(stack, first.checkpoint).root,
                       opened(stack, one.checkpoint).root)
    for request, field in [
            (audit_pb2.GetConsistencyProofRequest(old_size=0), "old_size"),
            (audit_pb2.GetConsistencyProofRequest(old_size=new.size + 1), "old_size"),
            (audit_pb2.GetConsistencyProofRequest(old_size=1, new_size=new.size + 1000),
             "new_size"),
            # past 2**63: no SQL integer; found by the fuzz test (was INTERNAL)
            (audit_pb2.GetConsistencyProofRequest(old_size=1, new_size=2**63), "new_size")]:
        err = rpc_error(lambda request=request: call(stack, "GetConsistencyProof", request))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert bad_request_fields(err) == [field]


def test_export_streams_every_entry_with_a_valid_proof(stack: Stack) -> None:
    cp = stack.settle()
    hasher = get_hasher(stack.cfg.audit_hash)
    root = opened(stack, cp.checkpoint).root
    items = call(stack, "Export", audit_pb2.ExportRequest())
    assert [i.entry.index for i in items] == list(range(cp.size))
    stored = call(stack, "GetEntries", audit_pb2.GetEntriesRequest(start=0, end=cp.size)).entries
    for item, entry in zip(items, stored, strict=True):
        assert item.tree_size == cp.size and item.entry.entry == entry.entry
        verify_inclusion(hasher, item.entry.index, cp.size, hasher.leaf(item.entry.entry),
                         list(item.inclusion_proof), root)
    part = call(stack, "Export", audit_pb2.ExportRequest(start=1, end=3))
    assert [i.entry.index for i in part] == [1, 2]
    err = rpc_error(lambda: call(stack, "Export", audit_pb2.ExportRequest(start=3, end=2)))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_export_cli_writes_json_lines_that_verify(stack: Stack, capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from pgw_officer_harness import OFFICERS, cli

    cp = stack.settle()
    out = tmp_path / "export.jsonl"
    rc, _, err = cli(capsys, "audit", "export", "--config", str(stack.config_file), "--gateway",
                     stack.address, "--org", OFFICERS, "--role", "auditor", "--out", str(out))
    assert rc == 0 and f"exported {cp.size} entries" in err
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [d["index"] for d in lines] == list(range(cp.size))
    hasher = get_hasher(stack.cfg.audit_hash)
    root = opened(stack, cp.checkpoint).root
    for d in lines:
        data = json.dumps(d["entry"], sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False).encode()
        verify_inclusion(hasher, d["index"], d["tree_size"], hasher.leaf(data),
                         [bytes.fromhex(h) for h in d["inclusion_proof"]], root)
