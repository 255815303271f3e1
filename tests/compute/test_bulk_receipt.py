"""A bulk score's receipt through real servers: past ``INLINE_PSEUDONYMS`` subjects the entry
names them by a subject set beside the log, so the receipt does not grow with the subjects
(it used to hold 67 bytes a subject, and failed the 16 MiB ceiling from about 2^18 on;
``tests/audit/test_subject_set_store.py`` builds that response at 2^18 + 1 subjects)."""

from __future__ import annotations

import hashlib

import grpc
from pgw_compute_harness import RawData, Stack

from gateway.audit import INLINE_PSEUDONYMS, AuditEntry, NoteVerifier, subject_set_items
from gateway.audit._store import open_store
from gateway.keys import load_public_key, load_secret
from gateway.packed_ids import pack_ids
from gateway.pb.pgw.v1 import compute_pb2, compute_pb2_grpc
from gateway.receipts import verify_receipt


def test_a_bulk_score_returns_a_small_receipt_bound_to_its_subject_set(
        stack: Stack, raw: RawData) -> None:
    key = load_secret(stack.cfg.audit_pseudonym_key)
    sizes = {}
    most = min(len(raw.ordered), 2000)  # 2000: the shipped agreements' limit
    assert most > INLINE_PSEUDONYMS + 500
    for n in (INLINE_PSEUDONYMS + 1, most):
        subjects = raw.ordered[:n]
        result = stack.score(subjects)
        receipt = result.receipt
        sizes[n] = receipt.ByteSize()
        entry = AuditEntry.decode(receipt.entry)
        assert entry.request_id == result.request_id and entry.subject_count == n
        assert entry.subject_set is not None and entry.subject_pseudonyms == ()
        verify_receipt(receipt, NoteVerifier(stack.cfg.audit_origin,
                                             load_public_key(stack.cfg.log_public_key)))
        store = open_store(stack.cfg.audit_dsn)
        try:
            blob = store.read_subject_set(receipt.leaf_index)
        finally:
            store.close()
        assert blob == subject_set_items(key, subjects)  # in the requester's order
        assert entry.subject_set.problem(blob) is None
        assert subjects[0].encode() not in receipt.entry and subjects[0].encode() not in blob
    assert max(sizes.values()) < 2048
    assert abs(sizes[most] - sizes[INLINE_PSEUDONYMS + 1]) < 64  # digits and proof length only


def test_the_entry_binds_exactly_the_response_the_requester_got(stack: Stack,
                                                                raw: RawData) -> None:
    """``response_digest`` = SHA-256 of (SHA-256 of the summary as sent before its receipt,
    then the SHA-256 of each result ciphertext in order), recomputed here from the wire: the
    gateway hashes the ciphertexts as its workers finish them, not at the release."""

    subjects = raw.ordered[:min(len(raw.ordered), 2000)]  # the agreements' limit
    header = compute_pb2.ComputeHeader(
        purpose="loan-risk-scoring", public_context=stack.keys.public_material(),
        linear=compute_pb2.LinearOp(model="hpf-loan-risk"), subject_count=len(subjects))

    async def call() -> list[compute_pb2.ComputeResponse]:
        async with grpc.aio.insecure_channel(stack.address) as channel:
            stub = compute_pb2_grpc.ComputeServiceStub(channel)
            requests = [compute_pb2.ComputeRequest(header=header),
                        compute_pb2.ComputeRequest(subjects=compute_pb2.SubjectChunk(
                            ids=pack_ids(subjects)))]
            stream = stub.Compute(iter(requests), timeout=120,
                                  metadata=(("authorization", f"Bearer {stack.token()}"),))
            return [m async for m in stream]
    messages = stack.loop.run(call())
    summary = compute_pb2.ComputeSummary()
    summary.CopyFrom(messages[0].summary)
    entry = AuditEntry.decode(summary.receipt.entry)
    summary.ClearField("receipt")
    h = hashlib.sha256(summary.SerializeToString(deterministic=True))
    chunks = [m.chunk.ciphertext for m in messages[1:]]
    assert len(chunks) == summary.ciphertexts >= 1
    for data in chunks:
        h.update(hashlib.sha256(data).digest())
    assert entry.response_digest == hashlib.sha256(h.digest()).hexdigest()
