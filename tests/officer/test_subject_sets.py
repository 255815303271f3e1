"""Bulk subject sets for the officer, on both backends: search finds a person inside a set (and
only there), a set changed in the database is caught by search (DATA_LOSS) and by
``pgw audit verify`` (naming the index, never a pseudonym or id), and ``pgw audit export``
writes the sets so an officer can answer "who accessed this person?" from the archive offline.

The log is made by the product's recorder before a real stack starts on it: one query about
P2, a compute over 1,500 people including P1, a compute over 1,100 including P2.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from pgw_officer_harness import (
    HPF,
    OFFICERS,
    PG_SKIP,
    LoopThread,
    Stack,
    Target,
    _pg_base,
    cli,
    clone,
    fresh_store,
    log_signer,
    metadata,
    snapshot,
    start_stack,
    write_config,
)

from gateway.audit import (
    INLINE_PSEUDONYMS,
    AuditEntry,
    holds_pseudonym,
    set_item,
    subject_pseudonym,
)
from gateway.audit._log import AuditLog
from gateway.auth import Principal, Role
from gateway.config import Config, load_config
from gateway.keys import load_secret
from gateway.pb.pgw.v1 import audit_pb2
from gateway.recorder import AuditRecorder
from gateway.validate import person_id_check_char

KINDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
QUERY, BULK, OTHER = 0, 1, 2  # entry indexes of the seeded log


def valid_ids(n: int, start: int) -> list[str]:
    """``n`` distinct GB 11643-valid ids (synthetic: region 320402, births from 1970)."""
    out = []
    for i in range(start, start + n):
        born = dt.date(1970, 1, 1) + dt.timedelta(days=i // 500)
        first17 = f"320402{born:%Y%m%d}{100 + i % 500:03d}"
        out.append(first17 + person_id_check_char(first17))
    return out


@dataclasses.dataclass
class BulkLog:
    stack: Stack
    target: Target
    cfg: Config
    p1: str   # in the bulk compute only
    p2: str   # in the query and the other compute
    p3: str   # in no entry
    bulk: list[str]


async def _seed(dsn: str, cfg: Config, log: BulkLog) -> None:
    audit = await AuditLog.open(dsn, cfg.audit_hash, cfg.audit_origin, log_signer(cfg))
    recorder = AuditRecorder(audit, load_secret(cfg.audit_pseudonym_key))
    who = Principal(HPF, "risk-officer-3", frozenset({Role.REQUESTER}), "jti", "kid")
    other = valid_ids(1099, 20_000) + [log.p2]
    try:
        for kind, subjects in (("query", [log.p2]), ("compute", log.bulk),
                               ("compute", other)):
            await recorder.record(kind=kind, request_id=f"seed-{kind}-{len(subjects)}",
                                  principal=who, role="requester", purpose="loan-risk-scoring",
                                  agreements=[], partners=["bank"],
                                  released=[("bank", "income_avg_12m", "encrypted")],
                                  subjects=subjects, decision="allow", reason="seeded")
    finally:
        await audit.aclose()


@pytest.fixture(scope="module", params=KINDS)
def bulk_log(request: pytest.FixtureRequest, loop: LoopThread, base_cfg: Config,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[BulkLog]:
    kind = str(request.param)
    if kind == "postgres" and not _pg_base():
        pytest.skip(PG_SKIP)
    where = tmp_path_factory.mktemp(f"bulk-{kind}")
    p1, p2, p3 = valid_ids(3, 50_000)
    bulk = valid_ids(INLINE_PSEUDONYMS + 476, 0)
    bulk.insert(700, p1)
    with fresh_store(kind, where) as target:
        log = BulkLog(None, target, base_cfg, p1, p2, p3, bulk)  # type: ignore[arg-type]
        loop.run(_seed(target.dsn, base_cfg, log))
        log.stack = start_stack(loop, base_cfg, kind, target.dsn, where / "state")
        try:
            log.stack.settle()
            yield log
        finally:
            log.stack.close()


def stack_search(stack: Stack, **criteria: Any) -> list[int]:
    answer = stack.audit_stub.Search(audit_pb2.SearchRequest(limit=100, **criteria),
                                     metadata=metadata(stack.auditor()), timeout=20)
    return [e.index for e in answer.entries]


def search(stack: Stack, subject: str) -> list[int]:
    return stack_search(stack, subject=subject)


def pseudonym(log: BulkLog, person: str) -> str:
    return subject_pseudonym(load_secret(log.cfg.audit_pseudonym_key), person)


def item(log: BulkLog, person: str) -> bytes:
    return set_item(load_secret(log.cfg.audit_pseudonym_key), person)


def test_search_finds_a_subject_in_a_side_set_and_only_there(bulk_log: BulkLog) -> None:
    stack = bulk_log.stack
    entries = [AuditEntry.decode(bulk_log.target.entry(i)) for i in range(3)]
    assert [e.subject_set is not None for e in entries] == [False, True, True]
    assert entries[BULK].subject_count == len(bulk_log.bulk) > INLINE_PSEUDONYMS
    assert search(stack, bulk_log.p1) == [BULK]
    assert search(stack, bulk_log.p2) == [QUERY, OTHER]
    assert search(stack, bulk_log.p3) == []
    assert search(stack, bulk_log.bulk[0]) == [BULK] == search(stack, bulk_log.bulk[-1])


def _stored_set(target: Target, index: int) -> bytes:
    return bytes(target.sql("SELECT subjects FROM audit_subject_sets WHERE idx = ?",
                            (index,))[0][0])


def _set_set(target: Target, index: int, blob: bytes) -> None:
    target.sql("UPDATE audit_subject_sets SET subjects = ? WHERE idx = ?", (blob, index))


def _no_secrets(text: str, log: BulkLog, *people: str) -> None:
    """No id, no pseudonym (hex) and no long hex run at all in ``text``."""
    for person in people:
        assert person not in text and person[:17] not in text
        assert pseudonym(log, person) not in text
    assert not re.search(r"[0-9a-f]{32}", text), text


def test_search_refuses_to_answer_from_a_tampered_set(bulk_log: BulkLog) -> None:
    original = _stored_set(bulk_log.target, BULK)
    altered = bytearray(original)
    altered[16 * 700 + 5] ^= 0x01  # inside P1's own set item: a silent miss otherwise
    _set_set(bulk_log.target, BULK, bytes(altered))
    try:
        with pytest.raises(grpc.RpcError) as info:
            search(bulk_log.stack, bulk_log.p1)
        assert info.value.code() == grpc.StatusCode.DATA_LOSS
        details = info.value.details() or ""
        assert f"audit entry {BULK}" in details and "pgw audit verify" in details
        _no_secrets(details, bulk_log, bulk_log.p1)
        # any person: the set might have held them, so no answer is better than a wrong one
        with pytest.raises(grpc.RpcError) as info:
            search(bulk_log.stack, bulk_log.p2)
        assert info.value.code() == grpc.StatusCode.DATA_LOSS
        by_purpose = stack_search(bulk_log.stack, purpose="loan-risk-scoring")
        assert by_purpose == [QUERY, BULK, OTHER]  # searches without a person read no set
    finally:
        _set_set(bulk_log.target, BULK, original)
    assert search(bulk_log.stack, bulk_log.p1) == [BULK]


@pytest.fixture
def copy(bulk_log: BulkLog, tmp_path: Path) -> Iterator[tuple[Target, Path]]:
    """The bulk log cloned (sets included) into a fresh store, free to tamper with."""
    snap = snapshot(bulk_log.target.dsn, 3)
    assert sorted(snap.subject_sets) == [BULK, OTHER]
    with fresh_store(bulk_log.target.kind, tmp_path / "stores") as target:
        clone(snap, target.dsn)
        yield target, write_config(bulk_log.cfg, target.dsn)


def verify(capsys: Any, config: Path, *extra: str) -> tuple[int, str, str]:
    return cli(capsys, "audit", "verify", "--config", str(config), *extra)


def test_an_untouched_log_with_sets_verifies(copy: tuple[Target, Path], capsys: Any) -> None:
    rc, out, err = verify(capsys, copy[1])
    assert (rc, err) == (0, "")
    assert "3 entries recomputed" in out and "2 subject sets match their digests" in out


def _flip(blob: bytes) -> bytes:
    return blob[:1000] + bytes([blob[1000] ^ 0x01]) + blob[1001:]


@pytest.mark.parametrize(("how", "index", "want"), [
    ("flip-one-byte", BULK, "subject set does not hash to the entry's digest"),
    ("drop-one-item", BULK, f"subject set is {16 * (INLINE_PSEUDONYMS + 476)} bytes, "
     f"want 16 x {INLINE_PSEUDONYMS + 477}"),
    ("delete", OTHER, "subject set missing (the entry names 1100 subjects)"),
    ("add-to-small-entry", QUERY, "a subject set is stored for an entry that has none"),
    ("past-the-end", 3, "a subject set is stored past the end of the log"),
])
def test_a_changed_set_is_named_by_its_index(copy: tuple[Target, Path], bulk_log: BulkLog,
                                             capsys: Any, how: str, index: int,
                                             want: str) -> None:
    target, config = copy
    if how == "flip-one-byte":
        _set_set(target, index, _flip(_stored_set(target, index)))
    elif how == "drop-one-item":
        _set_set(target, index, _stored_set(target, index)[:-16])
    elif how == "delete":
        target.sql("DELETE FROM audit_subject_sets WHERE idx = ?", (index,))
    else:
        target.sql("INSERT INTO audit_subject_sets (idx, subjects) VALUES (?, ?)",
                   (index, _stored_set(target, BULK)))
    rc, out, err = verify(capsys, config)
    assert (rc, out) == (1, "")
    assert err.startswith(f"FAILED at index {index}: {want}"), err
    _no_secrets(err, bulk_log, bulk_log.p1, bulk_log.p2)


def export(bulk_log: BulkLog, capsys: Any, out: Path, *extra: str,
           config: Path | None = None) -> tuple[int, str]:
    rc, _, err = cli(capsys, "audit", "export", "--config",
                     str(config or bulk_log.stack.config_file), "--gateway",
                     bulk_log.stack.address, "--org", OFFICERS, "--role", "auditor",
                     "--out", str(out), *extra)
    return rc, err


def test_an_export_carries_the_sets_for_an_offline_search(bulk_log: BulkLog, capsys: Any,
                                                          tmp_path: Path) -> None:
    archive = tmp_path / "archive.jsonl"
    rc, err = export(bulk_log, capsys, archive)
    assert rc == 0 and "exported 3 entries" in err, err
    lines = [json.loads(line) for line in archive.read_text().splitlines()]
    assert ["subject_set" in d for d in lines] == [False, True, True]
    # the officer's offline search: the person's set item (made with the pseudonym key), among
    # whole 16-byte items of each set; their HMAC pseudonym in an inline entry
    p1, p2 = item(bulk_log, bulk_log.p1), item(bulk_log, bulk_log.p2)
    sets = {d["index"]: base64.b64decode(d["subject_set"]) for d in lines if "subject_set" in d}
    assert [i for i, blob in sets.items() if holds_pseudonym(blob, p1)] == [BULK]
    assert [i for i, blob in sets.items() if holds_pseudonym(blob, p2)] == [OTHER]
    assert pseudonym(bulk_log, bulk_log.p2) in lines[QUERY]["entry"]["subject_pseudonyms"]
    for d in lines[1:]:  # each set hashes to its (proved) entry's digest
        entry = AuditEntry.decode(json.dumps(d["entry"], sort_keys=True, separators=(",", ":"),
                                             ensure_ascii=False).encode())
        assert entry.subject_set is not None
        assert entry.subject_set.problem(sets[d["index"]]) is None
    text = archive.read_text()
    assert bulk_log.p1 not in text and bulk_log.p2 not in text
    rc, out, err = verify(capsys, bulk_log.stack.config_file, "--since", str(archive))
    assert rc == 0 and "extends --since" in out, err

    lines[BULK]["subject_set"] = base64.b64encode(_flip(sets[BULK])).decode()
    archive.write_text("".join(json.dumps(d) + "\n" for d in lines))
    rc, _, err = verify(capsys, bulk_log.stack.config_file, "--since", str(archive))
    assert rc == 1
    assert err.startswith(f"FAILED at index {BULK}: in your archive: subject set does not "
                          "hash"), err


def test_a_digests_only_export_says_so_and_still_verifies(bulk_log: BulkLog, capsys: Any,
                                                          tmp_path: Path) -> None:
    archive = tmp_path / "digests.jsonl"
    rc, err = export(bulk_log, capsys, archive, "--digests-only")
    assert rc == 0, err
    lines = [json.loads(line) for line in archive.read_text().splitlines()]
    assert not any("subject_set" in d for d in lines)
    assert lines[BULK]["entry"]["subject_set"]["count"] == len(bulk_log.bulk)
    rc, out, _ = verify(capsys, bulk_log.stack.config_file, "--since", str(archive))
    assert rc == 0 and "extends --since" in out


def test_an_export_needs_no_access_to_the_audit_store(bulk_log: BulkLog, capsys: Any,
                                                       tmp_path: Path) -> None:
    """The sets come over the GetSubjectSet RPC: an officer whose config names an audit
    database it cannot reach still exports them."""
    unreachable = write_config(bulk_log.cfg, f"sqlite://{tmp_path / 'no-such-dir' / 'a.db'}")
    archive = tmp_path / "out.jsonl"
    rc, err = export(bulk_log, capsys, archive, config=unreachable)
    assert rc == 0, err
    lines = [json.loads(line) for line in archive.read_text().splitlines()]
    assert base64.b64decode(lines[BULK]["subject_set"]) == _stored_set(bulk_log.target, BULK)
    assert load_config(unreachable).audit_dsn != bulk_log.target.dsn


def test_an_export_stops_at_a_set_the_gateway_finds_altered(bulk_log: BulkLog, capsys: Any,
                                                            tmp_path: Path) -> None:
    original = _stored_set(bulk_log.target, BULK)
    _set_set(bulk_log.target, BULK, _flip(original))
    try:
        rc, err = export(bulk_log, capsys, tmp_path / "out.jsonl")
    finally:
        _set_set(bulk_log.target, BULK, original)
    assert rc == 1
    assert f"entry {BULK} keeps its {len(bulk_log.bulk)} subjects in a subject set" in err
    assert "DATA_LOSS" in err and "--digests-only" in err
    _no_secrets(err, bulk_log, bulk_log.p1, bulk_log.p2)


def get_set(stack: Stack, index: int, token: str | None = None) -> bytes:
    parts = stack.audit_stub.GetSubjectSet(audit_pb2.GetSubjectSetRequest(index=index),
                                           metadata=metadata(token or stack.auditor()),
                                           timeout=20)
    return b"".join(p.pseudonyms for p in parts)


def test_an_auditor_gets_a_set_in_parts_and_nobody_else_does(
        bulk_log: BulkLog, monkeypatch: pytest.MonkeyPatch) -> None:
    import gateway._audit_sets as sets

    stack = bulk_log.stack
    assert get_set(stack, BULK) == _stored_set(bulk_log.target, BULK)
    monkeypatch.setattr(sets, "CHUNK_BYTES", 32 * 50)  # parts of 100 set items
    parts = list(stack.audit_stub.GetSubjectSet(audit_pb2.GetSubjectSetRequest(index=OTHER),
                                                metadata=metadata(stack.auditor()), timeout=20))
    assert [len(p.pseudonyms) for p in parts] == [1600] * 11  # 1,100 set items
    assert b"".join(p.pseudonyms for p in parts) == _stored_set(bulk_log.target, OTHER)
    for index, code in ((QUERY, grpc.StatusCode.NOT_FOUND),
                        (3, grpc.StatusCode.INVALID_ARGUMENT)):
        with pytest.raises(grpc.RpcError) as info:
            get_set(stack, index)
        assert info.value.code() == code, info.value.details()
    with pytest.raises(grpc.RpcError) as info:
        get_set(stack, BULK, stack.token(HPF, "requester"))
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_a_set_the_gateway_finds_altered_is_not_handed_over(bulk_log: BulkLog) -> None:
    original = _stored_set(bulk_log.target, BULK)
    _set_set(bulk_log.target, BULK, original[:-16])
    try:
        with pytest.raises(grpc.RpcError) as info:
            get_set(bulk_log.stack, BULK)
    finally:
        _set_set(bulk_log.target, BULK, original)
    assert info.value.code() == grpc.StatusCode.DATA_LOSS
    assert f"audit entry {BULK}" in (info.value.details() or "")
    _no_secrets(info.value.details() or "", bulk_log, bulk_log.p1)


def offline(bulk_log: BulkLog, capsys: Any, archive: Path, *criteria: str) -> tuple[int, str,
                                                                                    str]:
    return cli(capsys, "audit", "search", "--archive", str(archive), "--config",
               str(bulk_log.stack.config_file), *criteria)


def _indexes(out: str) -> list[int]:
    return [int(line.split()[0]) for line in out.splitlines()[2:] if line.strip()]


def test_an_archive_answers_a_person_search_offline_as_the_gateway_does(
        bulk_log: BulkLog, capsys: Any, tmp_path: Path) -> None:
    archive = tmp_path / "archive.jsonl"
    assert export(bulk_log, capsys, archive)[0] == 0
    for person in (bulk_log.p1, bulk_log.p2, bulk_log.p3, bulk_log.bulk[-1]):
        rc, out, err = offline(bulk_log, capsys, archive, "--subject", person)
        assert rc == 0 and "offline" in err, err
        assert _indexes(out) == search(bulk_log.stack, person)
        _no_secrets(out + err, bulk_log, person)
    rc, out, _ = offline(bulk_log, capsys, archive, "--subject", bulk_log.p2, "--purpose",
                         "loan-risk-scoring")
    assert rc == 0 and _indexes(out) == stack_search(
        bulk_log.stack, subject=bulk_log.p2, purpose="loan-risk-scoring") != []
    rc, out, _ = offline(bulk_log, capsys, archive, "--decision", "allow")
    assert rc == 0 and _indexes(out) == stack_search(bulk_log.stack, decision="allow")


def test_an_offline_search_refuses_what_it_cannot_answer(bulk_log: BulkLog, capsys: Any,
                                                         tmp_path: Path) -> None:
    digests = tmp_path / "digests.jsonl"
    assert export(bulk_log, capsys, digests, "--digests-only")[0] == 0
    rc, _, err = offline(bulk_log, capsys, digests, "--subject", bulk_log.p1)
    assert rc == 1 and f"entry {BULK}: the archive has no subject set" in err, err
    rc, out, _ = offline(bulk_log, capsys, digests, "--purpose", "loan-risk-scoring")
    assert rc == 0 and BULK in _indexes(out)  # sets are not needed for this
    assert _indexes(out) == stack_search(bulk_log.stack, purpose="loan-risk-scoring")
    full = tmp_path / "full.jsonl"
    assert export(bulk_log, capsys, full)[0] == 0
    lines = [json.loads(line) for line in full.read_text().splitlines()]
    lines[BULK]["subject_set"] = base64.b64encode(
        _flip(base64.b64decode(lines[BULK]["subject_set"]))).decode()
    full.write_text("".join(json.dumps(d) + "\n" for d in lines))
    rc, _, err = offline(bulk_log, capsys, full, "--subject", bulk_log.p2)
    assert rc == 1 and f"entry {BULK}: in your archive: subject set does not hash" in err, err
    _no_secrets(err, bulk_log, bulk_log.p2)
    bad = "1" * 17 + "0"
    rc, _, err = offline(bulk_log, capsys, full, "--subject", bad)
    assert rc == 1 and "subject" in err and bad not in err, err
    broken = tmp_path / "broken.jsonl"
    broken.write_text(full.read_text() + "not an export line\n")
    rc, _, err = offline(bulk_log, capsys, broken, "--decision", "allow")
    assert rc == 1 and "archive line 4: not an export line" in err and "--since" not in err
    rc, _, err = verify(capsys, bulk_log.stack.config_file, "--since", str(broken))
    assert rc == 1 and "--since archive line 4: not an export line" in err, err
