"""``FetchBatch`` straight to a real connector: each item is settled exactly as a Fetch of it.

A batch is a transport saving only. Every bad item (tampered, expired, replayed, widened,
malformed subjects) is refused with the very status (code, message, ``google.rpc`` details) a
unary Fetch of an equivalent spec gets, and the good items around it are answered as a Fetch
answers them; a request id repeated inside a batch is a replay; an over-cap batch is refused
whole, before any spec is looked at.
"""

from __future__ import annotations

import time
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from grpc_status import rpc_status
from pgw_it_harness import RawData, Stack, code_of, make_spec

from connectors.sdk._fetch_batch import MAX_BATCH
from connectors.sdk._spec import sign_spec
from gateway.keys import load_private_key
from gateway.pb.pgw.v1 import common_pb2, connector_pb2
from gateway.policy import Agreement, load_policies
from gateway.status import bad_request_fields

SS = "social-security"
Signed = connector_pb2.SignedReleaseSpec


@pytest.fixture(scope="module")
def key(stack: Stack) -> Ed25519PrivateKey:
    return load_private_key(stack.cfg.spec_key)


@pytest.fixture(scope="module")
def loan(stack: Stack) -> Agreement:
    return load_policies(stack.cfg.policies).agreement("hpf-loan-ss")


@pytest.fixture(scope="module")
def people(raw: RawData) -> list[str]:
    return [i for i in raw.ordered if i in raw.rows[SS]][:12]


def batch(stack: Stack, signed: list[Signed]) -> list[connector_pb2.FetchOutcome]:
    request = connector_pb2.FetchBatchRequest(
        requests=[connector_pb2.FetchRequest(signed_spec=s) for s in signed])
    response = stack.connector_stub(SS).FetchBatch(request, timeout=10)
    assert len(response.outcomes) == len(signed)
    return list(response.outcomes)


def unary(stack: Stack, signed: Signed) -> connector_pb2.FetchResponse | tuple[Any, ...]:
    """A Fetch's answer, or its failure as (code number, message, detail bytes)."""
    try:
        return stack.connector_stub(SS).Fetch(connector_pb2.FetchRequest(signed_spec=signed),
                                              timeout=10)
    except grpc.RpcError as err:
        status = rpc_status.from_call(err)
        details = [d.SerializeToString() for d in status.details] if status else []
        return (err.code().value[0], err.details(), details)


def item(outcome: connector_pb2.FetchOutcome) -> connector_pb2.FetchResponse | tuple[Any, ...]:
    """A batch outcome in the shape :func:`unary` gives."""
    if outcome.WhichOneof("outcome") == "answer":
        return outcome.answer
    e = outcome.error
    return (e.code, e.message, [d.SerializeToString() for d in e.details])


def tamper(signed: Signed) -> Signed:
    data = bytearray(signed.spec)
    data[len(data) // 2] ^= 0x01
    return Signed(spec=bytes(data), signature=signed.signature, key_id=signed.key_id)


def bad_specs(loan: Agreement, key: Ed25519PrivateKey, people: list[str]
              ) -> dict[str, Any]:
    """Per kind of bad spec: a factory of fresh, equivalent bad signed specs."""
    def expired() -> Signed:
        now_ms = int(time.time() * 1000)
        return sign_spec(make_spec(loan, people[:2], issued_at_ms=now_ms - 60_000,
                                   expires_at_ms=now_ms - 30_000), key)

    widened = [common_pb2.FieldRelease(field="name", transform="plain", params_json="{}")]
    return {
        "tampered": lambda: tamper(sign_spec(make_spec(loan, people[:2]), key)),
        "expired": expired,
        "widened": lambda: sign_spec(make_spec(loan, people[:2], fields=widened), key),
        "another-purpose": lambda: sign_spec(make_spec(loan, people[:2],
                                                       purpose="withdrawal-review"), key),
        "bad-subject": lambda: sign_spec(make_spec(loan, [people[0], "12345"]), key),
    }


def test_good_items_are_answered_as_a_fetch_answers_them(stack: Stack, loan: Agreement,
                                                         key: Ed25519PrivateKey,
                                                         people: list[str]) -> None:
    specs = [make_spec(loan, people[i:i + 3]) for i in range(0, 9, 3)]
    outcomes = batch(stack, [sign_spec(s, key) for s in specs])
    for spec, outcome in zip(specs, outcomes, strict=True):
        assert outcome.WhichOneof("outcome") == "answer"
        assert outcome.answer.request_id == spec.request_id
        twin = make_spec(loan, list(spec.subjects))   # same release, its own request id
        want = unary(stack, sign_spec(twin, key))
        assert isinstance(want, connector_pb2.FetchResponse)
        assert list(outcome.answer.rows) == list(want.rows)


def test_a_bad_item_gets_the_fetch_status_and_the_others_are_answered(
        stack: Stack, raw: RawData, loan: Agreement, key: Ed25519PrivateKey,
        people: list[str]) -> None:
    bad = bad_specs(loan, key, people)
    replayed = sign_spec(make_spec(loan, people[:2]), key)
    assert isinstance(unary(stack, replayed), connector_pb2.FetchResponse)   # its id is spent
    cases = {**{name: make() for name, make in bad.items()}, "replayed": replayed}
    good = [sign_spec(make_spec(loan, people[i:i + 2]), key) for i in range(0, 12, 2)]
    order: list[str | Signed] = []
    for n, name in enumerate(sorted(cases)):   # bad items between good ones
        order.extend([good[n], name])
    sent = [cases[x] if isinstance(x, str) else x for x in order]
    outcomes = dict(zip(range(len(sent)), batch(stack, sent), strict=True))
    for n, x in enumerate(order):
        got = item(outcomes[n])
        if not isinstance(x, str):
            assert isinstance(got, connector_pb2.FetchResponse), got
            assert got.request_id == connector_pb2.ReleaseSpec.FromString(x.spec).request_id
            continue
        want = unary(stack, replayed if x == "replayed" else bad[x]())
        assert not isinstance(got, connector_pb2.FetchResponse), x
        assert got == want, (x, got, want)
        for person in people:   # no personal data in a refusal
            assert person not in got[1]
            assert str(raw.row(SS, person)["employer_code"]) not in got[1]
    assert item(outcomes[order.index("bad-subject")])[0] == \
        grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert item(outcomes[order.index("replayed")])[1] == "release spec replayed"


def test_one_request_id_twice_in_a_batch_the_second_is_a_replay(
        stack: Stack, loan: Agreement, key: Ed25519PrivateKey, people: list[str]) -> None:
    spec = make_spec(loan, people[:2])
    again = make_spec(loan, people[2:4], request_id=spec.request_id)   # other bytes, same id
    first, second, third = batch(stack, [sign_spec(spec, key), sign_spec(again, key),
                                         sign_spec(spec, key)])
    assert first.answer.request_id == spec.request_id
    for refused in (second, third):
        assert refused.WhichOneof("outcome") == "error"
        assert (refused.error.code, refused.error.message) == \
            (grpc.StatusCode.PERMISSION_DENIED.value[0], "release spec replayed")
    # and across batches
    (later,) = batch(stack, [sign_spec(spec, key)])
    assert later.error.message == "release spec replayed"


def test_an_over_cap_batch_is_refused_whole_before_any_spec_is_read(
        stack: Stack, loan: Agreement, key: Ed25519PrivateKey, people: list[str]) -> None:
    signed = [sign_spec(make_spec(loan, people[:1]), key) for _ in range(MAX_BATCH + 1)]
    err = code_of(lambda: batch(stack, signed))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (err.code(), err.details())
    assert bad_request_fields(err) == ["requests"]
    assert f"want at most {MAX_BATCH}" in (err.details() or "")
    # no request id was spent: the same specs answer at the cap
    outcomes = batch(stack, signed[:MAX_BATCH])
    assert all(o.WhichOneof("outcome") == "answer" for o in outcomes)


def test_an_empty_batch_answers_nothing(stack: Stack) -> None:
    assert batch(stack, []) == []
