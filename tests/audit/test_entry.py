"""Canonical audit entries: golden bytes, strict decoding, round trip, pseudonyms."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.audit import (
    AgreementRef,
    AuditEntry,
    format_time,
    get_hasher,
    subject_pseudonym,
    subject_pseudonyms,
)
from gateway.packed_ids import PackedIds

KEY = bytes(range(32))


def _entry(**changes: object) -> AuditEntry:
    base: dict[str, object] = dict(
        time="2025-01-02T03:04:05.000006Z", request_id="req-1", kind="query",
        requester_org="hospital-a", requester_subject="svc:analytics", role="analyst",
        purpose="research", agreements=(AgreementRef("dsa-7", 3, "ab" * 32),),
        partners=("clinic-b",), released=(("clinic-b", "age", "bucket:10"),), subject_count=1,
        subject_pseudonyms=(subject_pseudonym(KEY, "patient-42"),), decision="allow",
        reason="", response_digest="cd" * 32)
    base.update(changes)
    return AuditEntry(**base)  # type: ignore[arg-type]


def test_golden_encoding() -> None:
    e = _entry(subject_pseudonyms=(), subject_count=0, reason="ok \u00e9")
    assert e.encode() == (
        '{"agreements":[{"content_hash":"' + "ab" * 32 + '","id":"dsa-7","version":3}],'
        '"decision":"allow","kind":"query","partners":["clinic-b"],"purpose":"research",'
        '"reason":"ok \u00e9","released":[["clinic-b","age","bucket:10"]],'
        '"request_id":"req-1","requester_org":"hospital-a","requester_subject":"svc:analytics",'
        '"response_digest":"' + "cd" * 32 + '","role":"analyst","subject_count":0,'
        '"subject_pseudonyms":[],"time":"2025-01-02T03:04:05.000006Z","v":1}').encode()
    assert AuditEntry.decode(e.encode()) == e
    assert get_hasher("sha256").leaf(e.encode()) == hashlib.sha256(b"\x00" + e.encode()).digest()


_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)
_hex = st.binary(max_size=32).map(bytes.hex)
_pseud = st.binary(min_size=32, max_size=32).map(bytes.hex)
_time = st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9999, 1, 1),
                     timezones=st.just(UTC)).map(format_time)
_entries = st.builds(
    AuditEntry, time=_time, request_id=_text, kind=st.sampled_from(
        ["query", "explain", "compute", "join", "admin"]),
    requester_org=_text, requester_subject=_text, role=_text, purpose=_text,
    agreements=st.lists(st.builds(AgreementRef, _text, st.integers(-2**53, 2**53), _hex),
                        max_size=3).map(tuple),
    partners=st.lists(_text, max_size=3).map(tuple),
    released=st.lists(st.tuples(_text, _text, _text), max_size=3).map(tuple),
    subject_count=st.integers(0, 2**53), subject_pseudonyms=st.lists(_pseud, max_size=3).map(tuple),
    decision=st.sampled_from(["allow", "deny", "error"]), reason=_text, response_digest=_hex)


@given(_entries)
def test_round_trip(entry: AuditEntry) -> None:
    data = entry.encode()
    assert AuditEntry.decode(data) == entry
    assert AuditEntry.decode(data).encode() == data


@pytest.mark.parametrize("data", [
    b'{"v":1}', b"[]", b"\xff", b"not json",
    _entry().encode().replace(b'"v":1', b'"v":2'),
    _entry().encode().replace(b',"', b', "', 1),                       # whitespace
    _entry().encode()[:-1] + b',"extra":1}',                         # unknown key
    _entry().encode().replace(b'"version":3', b'"version":3.0'),       # float version
    _entry().encode().replace(b'"subject_count":1', b'"subject_count":true'),
    _entry().encode().replace(b'"partners":["clinic-b"]', b'"partners":"clinic-b"'),
    _entry().encode().replace(b'"agreements":[{', b'"agreements":[{"x":1,'),
    _entry().encode().replace(b'"reason":""', b'"reason":"\\u0041"'),  # escaped, not canonical
])
def test_decode_rejects_non_canonical(data: bytes) -> None:
    with pytest.raises(ValueError):
        AuditEntry.decode(data)


@pytest.mark.parametrize(("field", "value"), [
    ("time", "2025-01-02T03:04:05Z"), ("time", "2025-13-02T03:04:05.000000Z"),
    ("time", "2025-01-02T03:04:05.000000+00:00"), ("kind", "delete"), ("decision", "maybe"),
    ("subject_count", -1), ("subject_count", True), ("subject_pseudonyms", ("patient-42",)),
    ("subject_pseudonyms", ["ab" * 32]), ("subject_pseudonyms", ("AB" * 32,)),
    ("subject_pseudonyms", ("ab" * 31 + "zz",)), ("subject_pseudonyms", ("a" * 63, "b" * 65)),
    ("subject_pseudonyms", ("ab" * 32, "ab" * 32 + "\n")),
    ("response_digest", "XYZ"), ("partners", ("a", 1)),
    ("released", (("a", "b"),)), ("agreements", (("dsa", 1, "h"),)), ("reason", None),
])
def test_invalid_fields_rejected(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        _entry(**{field: value})


def test_entry_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        _entry().reason = "changed"  # type: ignore[misc]


def test_subject_pseudonym_is_keyed_and_domain_separated() -> None:
    p = subject_pseudonym(KEY, "patient-42")
    assert len(p) == 64 and p == subject_pseudonym(KEY, "patient-42")
    assert p != subject_pseudonym(KEY, "patient-43") != subject_pseudonym(bytes(32), "patient-42")
    assert p != hmac.new(KEY, b"patient-42", hashlib.sha256).hexdigest()  # prefix applied
    assert p == hmac.new(KEY, b"pgw/audit/subject-pseudonym/v1\x00patient-42",
                         hashlib.sha256).hexdigest()
    with pytest.raises(ValueError, match="at least 32"):
        subject_pseudonym(b"short", "patient-42")


def test_format_time() -> None:
    moment = datetime(2025, 1, 2, 4, 4, 5, 6, tzinfo=timezone(timedelta(hours=1)))
    assert format_time(moment) == "2025-01-02T03:04:05.000006Z"
    with pytest.raises(ValueError, match="naive"):
        format_time(datetime(2025, 1, 2))




def test_non_ascii_pseudonym_is_refused() -> None:
    with pytest.raises(ValueError, match="subject_pseudonyms"):
        _entry(subject_pseudonyms=("\u00e9" * 64,))


def test_packed_ids_give_the_same_pseudonyms() -> None:
    ids = ["11010519491231002X", "320402199808022553", "110105194912310021"]
    packed = PackedIds("".join(ids).encode())
    assert subject_pseudonyms(KEY, packed) == subject_pseudonyms(KEY, ids) == tuple(
        hmac.new(KEY, b"pgw/audit/subject-pseudonym/v1\x00" + i.encode(),
                 hashlib.sha256).hexdigest() for i in ids)
    assert subject_pseudonyms(KEY + b"k" * 40, packed) == tuple(
        hmac.new(KEY + b"k" * 40, b"pgw/audit/subject-pseudonym/v1\x00" + i.encode(),
                 hashlib.sha256).hexdigest() for i in ids)  # a key longer than one block
