"""A bulk score's receipt through real servers: past ``INLINE_PSEUDONYMS`` subjects the entry
names them by a subject set beside the log, so the receipt does not grow with the subjects
(it used to hold 67 bytes a subject, and failed the 16 MiB ceiling from about 2^18 on;
``tests/audit/test_subject_set_store.py`` builds that response at 2^18 + 1 subjects)."""

from __future__ import annotations

from pgw_compute_harness import RawData, Stack

from gateway.audit import INLINE_PSEUDONYMS, AuditEntry, NoteVerifier, pseudonym_blob
from gateway.audit._store import open_store
from gateway.keys import load_public_key, load_secret
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
        assert blob == pseudonym_blob(key, subjects)  # in the requester's order
        assert entry.subject_set.problem(blob) is None
        assert subjects[0].encode() not in receipt.entry and subjects[0].encode() not in blob
    assert max(sizes.values()) < 2048
    assert abs(sizes[most] - sizes[INLINE_PSEUDONYMS + 1]) < 64  # digits and proof length only
