"""Audit first: one durable entry per decision, no raw ids in it, and fail closed without it.

The audit store is read back through a second connection (``open_store``), as an officer's
tool would. The failing store is the real SQLite file with a trigger that aborts every insert
into ``audit_entries``, so the durable write itself fails inside the database.
"""

from __future__ import annotations

from typing import Any

import grpc
from pgw_it_harness import LOAN_SS, RawData, Stack, code_of, sqlite_path, sqlite_trigger

from gateway.audit import AuditEntry, subject_pseudonym
from gateway.audit._store import open_store
from gateway.keys import load_secret

AUDIT_DOWN = "the audit log cannot be written; nothing was released, retry later"
FAIL_TRIGGER = ("CREATE TRIGGER pgw_it_audit_down BEFORE INSERT ON audit_entries "
                "BEGIN SELECT RAISE(ABORT, 'injected audit fault'); END")


def test_an_allowed_query_adds_exactly_one_matching_entry(stack: Stack, raw: RawData) -> None:
    ids = raw.in_all[5:9]
    selections = {"social-security": LOAN_SS, "bank": ["income_avg_12m"]}
    before = stack.audit()
    token = stack.token(subject="loan-officer-11")
    response = stack.query("loan-eligibility", ids, selections, token=token)
    after = stack.audit()
    assert len(after) == len(before) + 1
    entry = after[-1]
    assert entry.kind == "query" and entry.decision == "allow"
    assert entry.request_id == response.request_id
    assert (entry.requester_org, entry.requester_subject, entry.role, entry.purpose) == \
        ("hpf-changzhou", "loan-officer-11", "requester", "loan-eligibility")
    assert entry.partners == ("bank", "social-security")
    assert {(a.id, a.version, a.content_hash) for a in entry.agreements} == \
        {(a.id, a.version, a.content_hash) for a in response.agreements}
    want_released = sorted([("bank", "income_avg_12m", "generalize"),
                            ("social-security", "contribution_months", "predicate"),
                            ("social-security", "continuous_months", "predicate"),
                            ("social-security", "employer_code", "pseudonym"),
                            ("social-security", "insured_status", "predicate")])
    assert list(entry.released) == want_released
    assert entry.subject_count == len(ids)
    key = load_secret(stack.cfg.audit_pseudonym_key)
    assert list(entry.subject_pseudonyms) == [subject_pseudonym(key, i) for i in ids]
    assert len(entry.response_digest) == 64
    # the receipt carries exactly the stored entry, at its index
    assert response.receipt.entry == entry.encode()
    assert AuditEntry.decode(response.receipt.entry) == entry
    assert response.receipt.leaf_index == len(after) - 1


def test_explain_is_audited_as_explain(stack: Stack) -> None:
    before = len(stack.audit())
    stack.explain("loan-eligibility", {"bank": ["card_number"]})
    entries = stack.audit()
    assert len(entries) == before + 1
    assert (entries[-1].kind, entries[-1].decision, entries[-1].released) == \
        ("explain", "deny", ())


def test_entries_never_hold_a_raw_id_or_name(stack: Stack, raw: RawData) -> None:
    ids = raw.in_all[10:20]
    stack.query("withdrawal-review", ids, {"social-security": ["name", "insured_status"]})
    code_of(lambda: stack.query("loan-eligibility", ids, {"bank": ["card_number"]}))
    store = open_store(stack.cfg.audit_dsn)
    try:
        blobs = store.read(0, store.size())
    finally:
        store.close()
    everything = b"\n".join(blobs)
    for person in ids:
        ss = raw.row("social-security", person)
        bank = raw.row("bank", person)
        for secret in (person, person[:17], ss["name"], ss["employer_code"],
                       bank["card_number"], repr(bank["income_avg_12m"])):
            assert secret.encode() not in everything, secret
    # and not in the database file either (checkpoints, cosignatures, WAL included)
    db = sqlite_path(stack.cfg.audit_dsn)
    files = b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))
    for person in ids:
        assert person.encode() not in files
        assert raw.row("social-security", person)["name"].encode() not in files


def _audit_down(stack: Stack) -> Any:
    return sqlite_trigger(sqlite_path(stack.cfg.audit_dsn), "pgw_it_audit_down", FAIL_TRIGGER)


def test_audit_store_failure_fails_closed(make_stack: Any, raw: RawData) -> None:
    stack = make_stack()
    ids = raw.in_all[:3]
    loan = {"social-security": LOAN_SS, "bank": ["income_avg_12m"]}
    first = stack.query("loan-eligibility", ids, loan)   # the store works...
    assert first.results
    size = len(stack.audit())
    with _audit_down(stack):
        for call in (
            lambda: stack.query("loan-eligibility", ids, loan),               # allowed
            lambda: stack.query("loan-eligibility", ids, {"bank": ["card_number"]}),  # denied
            lambda: stack.explain("loan-eligibility", loan),                  # dry run
        ):
            err = code_of(call)
            assert err.code() == grpc.StatusCode.UNAVAILABLE, (err.code(), err.details())
            assert err.details() == AUDIT_DOWN
            for person in ids:
                assert person not in err.details()
        assert len(stack.audit()) == size  # the failed batches left nothing behind
    # ...and once the store is back, the gateway works again (and audits again)
    again = stack.query("loan-eligibility", ids, loan)
    assert [r.values for r in again.results] == [r.values for r in first.results]
    entries = stack.audit()
    assert len(entries) == size + 1 and entries[-1].decision == "allow"
    assert again.receipt.leaf_index == size
