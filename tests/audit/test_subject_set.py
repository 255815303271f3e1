"""Bulk subject sets: the entry's two forms around the threshold, the digest's definition
(checked by an independent computation), strict decoding (``"v": 3`` set items, ``"v": 2``
HMAC sets still read), and the aligned search."""

from __future__ import annotations

import hashlib
import hmac
import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.audit import (
    INLINE_PSEUDONYMS,
    AgreementRef,
    AuditEntry,
    SubjectSet,
    holds_pseudonym,
    pseudonym_blob,
    subject_pseudonyms,
    subject_set_items,
)

KEY = bytes(range(32))
DOMAIN = b"pgw/audit/subject-pseudonym/v1\x00"
T = INLINE_PSEUDONYMS


def _entry(**changes: object) -> AuditEntry:
    base: dict[str, object] = dict(
        time="2025-01-02T03:04:05.000006Z", request_id="req-1", kind="compute",
        requester_org="hpf-changzhou", requester_subject="risk-officer-3", role="requester",
        purpose="loan-risk-scoring", agreements=(AgreementRef("hpf-risk-bank", 1, "ab" * 32),),
        partners=("bank",), released=(("bank", "income_avg_12m", "encrypted"),),
        subject_count=0, subject_pseudonyms=(), decision="allow", reason="",
        response_digest="cd" * 32)
    base.update(changes)
    return AuditEntry(**base)  # type: ignore[arg-type]


def _ids(n: int, start: int = 0) -> list[str]:
    return [f"320402{i:011d}X" for i in range(start, start + n)]  # the shape sets take


def _bulk(n: int) -> tuple[AuditEntry, bytes]:
    blob = subject_set_items(KEY, _ids(n))
    return _entry(subject_count=n, subject_set=SubjectSet.of(blob)), blob


def _v1_reference(entry: AuditEntry) -> bytes:
    """The pre-subject-set encoder, written out: every entry up to the threshold keeps it."""
    doc = entry.to_json()
    assert doc["v"] == 1 and set(doc) >= {"subject_pseudonyms"}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode()


def test_golden_bulk_encoding() -> None:
    entry = _entry(subject_count=1025, subject_set=SubjectSet(1025, "ef" * 32))
    assert entry.encode() == (
        '{"agreements":[{"content_hash":"' + "ab" * 32 + '","id":"hpf-risk-bank","version":1}],'
        '"decision":"allow","kind":"compute","partners":["bank"],"purpose":"loan-risk-scoring",'
        '"reason":"","released":[["bank","income_avg_12m","encrypted"]],"request_id":"req-1",'
        '"requester_org":"hpf-changzhou","requester_subject":"risk-officer-3",'
        '"response_digest":"' + "cd" * 32 + '","role":"requester","subject_count":1025,'
        '"subject_set":{"count":1025,"sha256":"' + "ef" * 32 + '"},'
        '"time":"2025-01-02T03:04:05.000006Z","v":3}').encode()
    assert AuditEntry.decode(entry.encode()) == entry
    # the same with a set of HMAC pseudonyms, as written before set items: "v": 2, still read
    legacy = _entry(subject_count=1025, subject_set=SubjectSet(1025, "ef" * 32, legacy=True))
    assert legacy.encode() == entry.encode().replace(b'"v":3}', b'"v":2}')
    assert AuditEntry.decode(legacy.encode()) == legacy and legacy != entry


def test_digest_is_sha256_of_the_items_in_order() -> None:
    ids = _ids(T + 7)
    blob = subject_set_items(KEY, ids)
    described = SubjectSet.of(blob)
    assert described == SubjectSet(len(ids), hashlib.sha256(blob).hexdigest())
    assert described.problem(blob) is None and not described.legacy
    assert len(blob) == 16 * len(ids)
    assert described.problem(blob[16:32] + blob[:16] + blob[32:]) is not None  # order counts


def test_legacy_digest_is_sha256_of_the_raw_pseudonyms_in_order() -> None:
    ids = _ids(T + 7)
    blob = pseudonym_blob(KEY, ids)
    # independent: the standard library's HMAC, one id at a time, then hex -> raw bytes
    raw = [hmac.new(KEY, DOMAIN + i.encode(), hashlib.sha256).digest() for i in ids]
    assert blob == b"".join(raw)
    assert blob == bytes.fromhex("".join(subject_pseudonyms(KEY, ids)))
    described = SubjectSet.of(blob, legacy=True)
    assert described == SubjectSet(len(ids), hashlib.sha256(b"".join(raw)).hexdigest(), True)
    assert described.problem(blob) is None and described.width == 32
    assert SubjectSet(len(ids), described.sha256).problem(blob) is not None  # 16 x count
    swapped = raw[1] + raw[0] + b"".join(raw[2:])  # order is part of the set
    assert described.problem(swapped) is not None


@settings(max_examples=25, deadline=None)
@given(n=st.one_of(st.integers(0, 4), st.integers(T - 3, T + 3)))
def test_the_form_follows_the_count_at_the_threshold(n: int) -> None:
    ids = _ids(n)
    if n <= T:
        entry = _entry(subject_count=n, subject_pseudonyms=subject_pseudonyms(KEY, ids))
        data = entry.encode()
        assert data == _v1_reference(entry) and b'"v":1}' in data  # byte-identical to v1
        assert b"subject_set" not in data
    else:
        entry, blob = _bulk(n)
        data = entry.encode()
        assert b'"v":3}' in data and b"subject_pseudonyms" not in data
        assert len(data) < 1024 and len(blob) == 16 * n
        with pytest.raises(ValueError, match=f"at most {T} inline"):
            _entry(subject_count=n, subject_pseudonyms=subject_pseudonyms(KEY, ids))
    assert AuditEntry.decode(data) == entry and AuditEntry.decode(data).encode() == data


@given(count=st.integers(T + 1, 2**53), sha=st.binary(min_size=32, max_size=32).map(bytes.hex),
       text=st.text(st.characters(exclude_categories=("Cs",)), max_size=20))
def test_bulk_round_trip_equals_the_plain_encoder(count: int, sha: str, text: str) -> None:
    entry = _entry(subject_count=count, subject_set=SubjectSet(count, sha), reason=text,
                   purpose=text, request_id=text)
    data = entry.encode()
    assert data == json.dumps(entry.to_json(), sort_keys=True, separators=(",", ":"),
                              ensure_ascii=False, allow_nan=False).encode()
    assert AuditEntry.decode(data) == entry


def _set_form(data: bytes, count: int, sha: str = "ef" * 32, v: int = 3) -> bytes:
    doc = json.loads(data)
    del doc["subject_pseudonyms"]
    doc.update(subject_count=count, subject_set={"count": count, "sha256": sha}, v=v)
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


_SMALL = _entry().encode()
_BULK = _set_form(_SMALL, T + 1)


@pytest.mark.parametrize("data", [
    _set_form(_SMALL, T + 1, v=1),                                      # a set under v 1
    _SMALL.replace(b'"v":1', b'"v":2'),                                 # a list under v 2
    _SMALL.replace(b'"v":1', b'"v":3'),                                 # a list under v 3
    _set_form(_SMALL, T + 1, v=4),                                      # no such version
    _BULK.replace(b'"v":3', b'"v":3.0'),
    _set_form(_SMALL, T),                                               # a set at the threshold
    _set_form(_SMALL, 3),
    _BULK.replace(b'"subject_count":1025,', b'"subject_count":1025,"subject_pseudonyms":[],'),
    _BULK.replace(b'"sha256"', b'"extra":1,"sha256"'),
    _BULK.replace(b'{"count":1025,', b'{'),
    _BULK.replace(b'"count":1025', b'"count":1025.0'),
    _BULK.replace(b'"count":1025', b'"count":true'),
    _BULK.replace(b'"ef' + b"ef" * 31, b'"EF' + b"ef" * 31),            # upper-case digest
    _BULK.replace(b'"ef' + b"ef" * 31, b'"' + b"ef" * 31),              # short digest
    _BULK.replace(b'"subject_count":1025', b'"subject_count":1026'),    # counts disagree
    _BULK.replace(b'"subject_set":{', b'"subject_set":[').replace(b'"},"time"', b'"],"time"'),
    _BULK.replace(b',"sha256"', b', "sha256"'),                          # whitespace
    json.dumps({**json.loads(_SMALL), "subject_pseudonyms": ["ab" * 32] * (T + 1),
                "subject_count": T + 1}, sort_keys=True, separators=(",", ":")).encode(),
])
def test_decode_accepts_exactly_one_form(data: bytes) -> None:
    assert AuditEntry.decode(_BULK).subject_set == SubjectSet(T + 1, "ef" * 32)  # the base
    legacy = AuditEntry.decode(_set_form(_SMALL, T + 1, v=2)).subject_set
    assert legacy == SubjectSet(T + 1, "ef" * 32, legacy=True)
    with pytest.raises(ValueError):
        AuditEntry.decode(data)


@pytest.mark.parametrize(("changes", "field"), [
    (dict(subject_count=T + 1, subject_set=SubjectSet(T + 1, "ef" * 32),
          subject_pseudonyms=("ab" * 32,)), "subject_pseudonyms"),
    (dict(subject_count=T + 2, subject_set=SubjectSet(T + 1, "ef" * 32)), "subject_set"),
    (dict(subject_count=T + 1, subject_set=(T + 1, "ef" * 32)), "subject_set"),
    (dict(subject_count=T + 1, subject_pseudonyms=("ab" * 32,) * (T + 1)), "subject_pseudonyms"),
])
def test_inconsistent_subject_fields_are_refused(changes: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        _entry(**changes)


@pytest.mark.parametrize(("count", "sha"), [(T, "ef" * 32), (T + 1, "EF" * 32), (True, "ef" * 32),
                                            (T + 1, "ef" * 31), (T + 1.0, "ef" * 32)])
def test_subject_set_fields_are_checked(count: object, sha: str) -> None:
    with pytest.raises(ValueError, match="subject_set"):
        SubjectSet(count, sha)  # type: ignore[arg-type]


def test_problems_name_sizes_never_content() -> None:
    entry, blob = _bulk(T + 5)
    described = entry.subject_set
    assert described is not None
    altered = bytearray(blob)
    altered[100] ^= 1
    problems = [described.problem(None), described.problem(blob[:-16]),
                described.problem(blob + bytes(16)), described.problem(blob[:-1]),
                described.problem(bytes(altered))]
    assert all(problems)
    assert "missing" in problems[0] and "altered" in problems[4]
    hexes = set(re.findall(r"[0-9a-f]{16,}", " ".join(p or "" for p in problems)))
    assert not hexes, hexes
    with pytest.raises(ValueError, match="multiple of 16"):
        SubjectSet.of(blob[:-1])
    with pytest.raises(ValueError, match="multiple of 32"):
        SubjectSet.of(blob + blob[:-16], legacy=True)


@given(width=st.sampled_from([16, 32]), data=st.data())
def test_holds_pseudonym_matches_whole_items_only(width: int, data: st.DataObject) -> None:
    """Set items (16 bytes) and the HMAC pseudonyms of v2 sets (32 bytes) alike."""
    items = data.draw(st.lists(st.binary(min_size=width, max_size=width), min_size=1,
                               max_size=40, unique=True))
    blob = b"".join(items)
    member = data.draw(st.sampled_from(items))
    assert holds_pseudonym(blob, member) and holds_pseudonym(blob, member.hex())
    other = data.draw(st.binary(min_size=width, max_size=width))
    assert holds_pseudonym(blob, other) == (other in items)
    if len(items) > 1:  # a match straddling two items is no item
        shift = data.draw(st.integers(1, width - 1))
        straddle = blob[shift:shift + width]
        assert holds_pseudonym(blob, straddle) == (straddle in items)


def test_holds_pseudonym_skips_an_unaligned_match_before_an_aligned_one() -> None:
    needle = bytes(range(32))
    tricky = bytes(16) + needle + bytes(16)  # two items, the needle across their border
    assert not holds_pseudonym(tricky, needle)
    assert holds_pseudonym(tricky + needle, needle)
    with pytest.raises(ValueError, match="16 or 32"):
        holds_pseudonym(tricky, needle[:31])
    item = bytes(range(16))
    assert not holds_pseudonym(bytes(8) + item + bytes(8), item)  # across two 16-byte items
    assert holds_pseudonym(bytes(16) + item, item)
