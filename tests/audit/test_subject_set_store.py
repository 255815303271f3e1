"""Subject sets in the stores, the group-commit log and the recorder, on both backends: round
trips, one transaction with their entries, old databases gaining the table, fail-closed appends,
and a receipt that stays small past 2^18 subjects."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.audit import (
    INLINE_PSEUDONYMS,
    AuditEntry,
    SubjectSet,
    pseudonym_blob,
    subject_pseudonyms,
    subject_set_items,
)
from gateway.audit._log import AuditLog
from gateway.audit._note import NoteSigner
from gateway.audit._store import AuditStore, open_store
from gateway.auth import Principal, Role
from gateway.errors import AuditUnavailable
from gateway.packed_ids import PackedIds
from gateway.pb.pgw.v1 import common_pb2, compute_pb2
from gateway.recorder import AuditRecorder
from gateway.server import MAX_MESSAGE

ORIGIN = "pgw.test/audit"
KEY = bytes(range(32, 64))
PRINCIPAL = Principal("hpf-changzhou", "risk-officer-3", frozenset({Role.REQUESTER}), "j", "k")


def _entries(start: int, count: int) -> list[bytes]:
    return [f'{{"n":{n}}}'.encode() for n in range(start, start + count)]


def _blob(tag: int, count: int = 3) -> bytes:
    return bytes([tag % 256]) * 32 * count


def _ids(n: int, start: int = 0) -> list[str]:
    return [f"{i:018d}" for i in range(start, start + n)]


def test_sets_are_stored_under_their_entries_index(store: AuditStore) -> None:
    assert store.append_batch(_entries(0, 5), {1: _blob(1), 3: _blob(3, 40)}) == 0
    assert store.append_batch(_entries(5, 2), {0: _blob(5)}) == 5
    assert store.append_batch(_entries(7, 1)) == 7  # the one-argument form still works
    assert [store.read_subject_set(i) for i in range(9)] == [
        None, _blob(1), None, _blob(3, 40), None, _blob(5), None, None, None]
    assert store.subject_set_indexes(0, 8) == [1, 3, 5]
    assert store.subject_set_indexes(2, 5) == [3]
    assert store.read(0, 8) == _entries(0, 8)  # entries are untouched by their sets


def test_a_failing_set_insert_leaves_nothing_of_the_batch(store: AuditStore,
                                                          store_target: Any) -> None:
    store.append_batch(_entries(0, 2))
    # the sets are inserted after the batch's entries: the entries were already written
    store_target.inject_insert_fault(3, table="audit_subject_sets")
    with pytest.raises(AuditUnavailable, match="injected fault"):
        store.append_batch(_entries(2, 3), {0: _blob(2), 1: _blob(3)})
    assert store.size() == 2 and store.read_indexed(0, 10) == list(enumerate(_entries(0, 2)))
    assert store.subject_set_indexes(0, 10) == []
    store_target.clear_fault(table="audit_subject_sets")
    assert store.append_batch(_entries(2, 3), {0: _blob(2), 1: _blob(3)}) == 2
    assert store.subject_set_indexes(0, 10) == [2, 3]


@pytest.mark.parametrize("sets", [{2: b"x" * 32}, {-1: b"x" * 32}, {0: "not bytes"}])
def test_a_set_outside_its_batch_is_refused_whole(store: AuditStore, sets: Any) -> None:
    with pytest.raises(ValueError, match="subject set at batch offset"):
        store.append_batch(_entries(0, 2), sets)
    assert store.size() == 0 and store.subject_set_indexes(0, 10) == []


def test_a_database_made_before_subject_sets_gains_the_table(store_target: Any) -> None:
    first = open_store(store_target.dsn)
    first.create("sha256", ORIGIN)
    first.append_batch(_entries(0, 3))
    first.close()
    store_target.execute("DROP TABLE audit_subject_sets;")  # the schema before session 4
    again = open_store(store_target.dsn)
    try:
        assert again.read(0, 3) == _entries(0, 3)
        assert again.subject_set_indexes(0, 3) == []
        assert again.append_batch(_entries(3, 1), {0: _blob(7)}) == 3
        assert again.read_subject_set(3) == _blob(7)
    finally:
        again.close()
    reopened = open_store(store_target.dsn)  # idempotent: the table and its rows stay
    try:
        assert reopened.read_subject_set(3) == _blob(7)
    finally:
        reopened.close()


def test_group_commit_keeps_each_set_with_its_entry(store_target: Any,
                                                    signer: NoteSigner) -> None:
    async def scenario() -> None:
        log = await AuditLog.open(store_target.dsn, "sha256", ORIGIN, signer, max_batch=16)
        try:
            results = await asyncio.gather(*(
                log.append(_entries(n, 1)[0], _blob(n) if n % 3 == 0 else None)
                for n in range(60)))
            assert len({r.size for r in results}) < 60  # commits were shared
            store = log.store
            for n, r in enumerate(results):
                assert store.read(r.index, r.index + 1) == _entries(n, 1)
                assert store.read_subject_set(r.index) == (_blob(n) if n % 3 == 0 else None)
            with pytest.raises(TypeError, match="subject set"):
                await log.append(b"{}", "not bytes")  # type: ignore[arg-type]
        finally:
            await log.aclose()

    asyncio.run(scenario())


def test_a_set_fault_fails_every_waiter_of_the_batch(store_target: Any, signer: NoteSigner,
                                                     recompute_root: Any) -> None:
    async def scenario() -> None:
        log = await AuditLog.open(store_target.dsn, "sha256", ORIGIN, signer)
        try:
            await log.append(_entries(0, 1)[0])
            store_target.inject_insert_fault(4, table="audit_subject_sets")
            failed = await asyncio.gather(*(
                log.append(_entries(n, 1)[0], _blob(n) if n % 2 == 0 else None)
                for n in range(1, 12)), return_exceptions=True)
            assert all(isinstance(f, AuditUnavailable) for f in failed), failed
            assert recompute_root(store_target.dsn)[0] == log.size == 1
            assert log.store.subject_set_indexes(0, 100) == []
            store_target.clear_fault(table="audit_subject_sets")
            result = await log.append(_entries(1, 1)[0], _blob(1))
            assert result.index == 1 and log.store.read_subject_set(1) == _blob(1)
        finally:
            await log.aclose()

    asyncio.run(scenario())


async def _record(recorder: AuditRecorder, subjects: Any) -> common_pb2.AuditReceipt:
    return await recorder.record(
        kind="compute", request_id="req-bulk", principal=PRINCIPAL, role="requester",
        purpose="loan-risk-scoring", agreements=[], partners=["bank"],
        released=[("bank", "income_avg_12m", "encrypted")], subjects=subjects,
        decision="allow", reason="computed", digest="ab" * 32)


@pytest.mark.parametrize("n", [3, INLINE_PSEUDONYMS, INLINE_PSEUDONYMS + 1, 5000])
def test_the_recorder_decides_inline_or_side(store_target: Any, signer: NoteSigner,
                                             n: int) -> None:
    ids = _ids(n, 320402199001010000)

    async def scenario() -> None:
        log = await AuditLog.open(store_target.dsn, "sha256", ORIGIN, signer)
        try:
            recorder = AuditRecorder(log, KEY)
            for subjects in (ids, await recorder.pseudonymise(PackedIds("".join(ids).encode()))):
                receipt = await _record(recorder, subjects)
                index = receipt.leaf_index
                assert log.store.read(index, index + 1)[0] == receipt.entry
                entry = AuditEntry.decode(receipt.entry)
                blob = log.store.read_subject_set(index)
                assert entry.subject_count == n
                if n <= INLINE_PSEUDONYMS:
                    assert blob is None and entry.subject_set is None
                    assert entry.subject_pseudonyms == subject_pseudonyms(KEY, ids)
                else:
                    assert blob == subject_set_items(KEY, ids) and entry.subject_pseudonyms == ()
                    assert entry.subject_set == SubjectSet.of(blob)
                    assert len(receipt.entry) < 1024
                for raw in (ids[0], ids[-1]):  # no raw id in the entry or the set
                    assert raw.encode() not in receipt.entry
                    assert raw.encode() not in (blob or b"")
        finally:
            await log.aclose()

    asyncio.run(scenario())


def test_a_compute_over_2_18_subjects_fits_the_shipped_ceiling(tmp_path: Any,
                                                              signer: NoteSigner) -> None:
    """The release that failed with RESOURCE_EXHAUSTED from about 2^18 subjects: the first
    response of a linear compute (summary + receipt) built as ``_release`` builds it. HE is
    left out on purpose: the ciphertext chunks were never the problem (each is its own
    message); the inline entry was, at 67 bytes a subject."""
    n = (1 << 18) + 1
    assert n * 67 > MAX_MESSAGE  # what the inline list alone would have been
    ids = PackedIds(b"".join(b"%018d" % (320402199001010000 + i) for i in range(n)))

    async def scenario() -> compute_pb2.ComputeResponse:
        log = await AuditLog.open(str(tmp_path / "audit.db"), "sha256", ORIGIN, signer)
        try:
            recorder = AuditRecorder(log, KEY)
            pending = await recorder.pseudonymise(ids)
            first = compute_pb2.ComputeResponse(summary=compute_pb2.ComputeSummary(
                request_id="req-bulk", operation="linear", model="hpf-loan-risk", count=n,
                presence=[compute_pb2.Presence(partner=p, found=b"\xff" * (n // 8 + 1))
                          for p in ("bank", "education", "social-security")]))
            first.summary.receipt.CopyFrom(await _record(recorder, pending))
            assert log.store.read_subject_set(0) == subject_set_items(KEY, ids)
            return first
        finally:
            await log.aclose()

    first = asyncio.run(scenario())
    receipt = first.summary.receipt
    assert AuditEntry.decode(receipt.entry).subject_set == SubjectSet(
        n, SubjectSet.of(subject_set_items(KEY, ids)).sha256)
    assert receipt.ByteSize() < 2048
    assert first.ByteSize() < 128 * 1024 < MAX_MESSAGE  # the presence bitmaps dominate


def test_big_subject_sets_commit_a_few_at_a_time(store_target: Any, signer: Any,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Group commit is bounded by bytes too: queued bulk entries (32 MiB of set each at 2^20)
    go in several transactions, each set with its own entry, in order."""
    from gateway.audit import _log

    blobs = [_blob(n, 40) for n in range(6)]  # 1,280 bytes of set each
    monkeypatch.setattr(_log, "MAX_BATCH_BYTES", 3000)  # two such entries per batch

    async def scenario() -> list[Any]:
        log = await _log.AuditLog.open(store_target.dsn, "sha256", ORIGIN, signer)
        try:
            return list(await asyncio.gather(*(log.append(e, b) for e, b in
                                               zip(_entries(0, 6), blobs, strict=True))))
        finally:
            await log.aclose()
    results = asyncio.run(scenario())
    assert [r.index for r in results] == list(range(6))
    assert [r.size for r in results] == [2, 2, 4, 4, 6, 6]  # three commits of two
    store = open_store(store_target.dsn)
    try:
        assert [store.read_subject_set(i) for i in range(6)] == blobs
    finally:
        store.close()


def test_search_reads_each_set_in_its_own_form(store_target: Any, signer: NoteSigner) -> None:
    """A ``"v": 2`` entry written before set items holds HMAC pseudonyms; a ``"v": 3`` one set
    items. The officer search looks for the person's own form in each, and only there."""
    from functools import partial

    from gateway._audit_sets import checked_set
    from gateway.audit_search import names_person

    ids = _ids(INLINE_PSEUDONYMS + 3, 320402199001010000)
    person, stranger = ids[7], _ids(1, 320402199101010000)[0]
    recorder = AuditRecorder(None, KEY)  # type: ignore[arg-type]  # criteria only

    async def scenario() -> None:
        log = await AuditLog.open(store_target.dsn, "sha256", ORIGIN, signer)
        try:
            old_blob = pseudonym_blob(KEY, ids)
            old = AuditEntry.decode(await _record_raw(log, old_blob, legacy=True))
            new = AuditEntry.decode((await _record(AuditRecorder(log, KEY), ids)).entry)
            assert old.subject_set == SubjectSet.of(old_blob, legacy=True)
            assert old.subject_set.count == len(ids)
            # the gateway's checked read (search, GetSubjectSet) sizes each set by its version
            assert checked_set(log.store, 0) == old_blob
            assert checked_set(log.store, 1) == subject_set_items(KEY, ids)
            assert new.subject_set == SubjectSet.of(subject_set_items(KEY, ids))
            def names(index: int, entry: AuditEntry, criteria: dict[str, Any]) -> bool:
                read = partial(log.store.read_subject_set, index)
                return names_person(entry.to_json(), criteria, read)  # type: ignore[arg-type]

            for who, found in ((person, [True, True]), (stranger, [False, False])):
                forms = recorder.person_forms(who)
                assert [names(i, e, forms) for i, e in enumerate((old, new))] == found
            # each form only: an HMAC pseudonym is no item of a new set, and the reverse
            forms = recorder.person_forms(person)
            assert not names(1, new, {**forms, "set_item": b"\0" * 32})
            assert not names(0, old, {**forms, "pseudonym": "00" * 32})
        finally:
            await log.aclose()

    asyncio.run(scenario())


async def _record_raw(log: AuditLog, blob: bytes, *, legacy: bool) -> bytes:
    """Append a bulk entry with ``blob`` as its set, as an older gateway wrote it."""
    described = SubjectSet.of(blob, legacy=legacy)
    entry = AuditEntry(
        time="2025-01-02T03:04:05.000006Z", request_id="req-old", kind="compute",
        requester_org="hpf-changzhou", requester_subject="s", role="requester",
        purpose="loan-risk-scoring", agreements=(), partners=("bank",), released=(),
        subject_count=described.count, subject_pseudonyms=(),
        subject_set=described,
        decision="allow", reason="", response_digest="")
    data = entry.encode()
    await log.append(data, blob)
    return data
