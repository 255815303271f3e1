"""Straight to a connector: a compromised gateway (or anyone on the partner's network) cannot
widen a release. Specs are built and signed here with the gateway's own key from the config;
every variant the connector must refuse is refused with an exact code, and nothing is released.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pgw_it_harness import RawData, Stack, code_of, make_spec, params_json

from connectors.sdk._spec import sign_spec
from gateway.keys import key_id, load_private_key
from gateway.pb.pgw.v1 import common_pb2, connector_pb2
from gateway.policy import Agreement, load_policies

UNAUTH, DENIED = grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED
LOAN_SS = "hpf-loan-ss"


def agreement(stack: Stack, agreement_id: str) -> Agreement:
    return load_policies(stack.cfg.policies).agreement(agreement_id)


@pytest.fixture(scope="module")
def key(stack: Stack) -> Ed25519PrivateKey:
    return load_private_key(stack.cfg.spec_key)


@pytest.fixture(scope="module")
def people(raw: RawData) -> list[str]:
    return [i for i in raw.ordered if i in raw.rows["social-security"]][:5]


def fetch(stack: Stack, signed: connector_pb2.SignedReleaseSpec,
          partner: str = "social-security") -> connector_pb2.FetchResponse:
    return stack.connector_stub(partner).Fetch(connector_pb2.FetchRequest(signed_spec=signed),
                                               timeout=10)


def refused(stack: Stack, signed: connector_pb2.SignedReleaseSpec, code: grpc.StatusCode,
            raw: RawData, people: list[str], partner: str = "social-security") -> grpc.RpcError:
    err = code_of(lambda: fetch(stack, signed, partner))
    assert err.code() == code, (err.code(), err.details())
    for person in people:  # nothing of the rows in the refusal
        row = raw.rows["social-security"].get(person, {})
        for value in (person, row.get("name"), row.get("employer_code")):
            if value:
                assert str(value) not in (err.details() or "")
    return err


def test_a_valid_signed_spec_is_answered(stack: Stack, raw: RawData, key: Ed25519PrivateKey,
                                         people: list[str]) -> None:
    spec = make_spec(agreement(stack, LOAN_SS), people)
    answer = fetch(stack, sign_spec(spec, key))
    assert answer.request_id == spec.request_id
    assert [r.subject_index for r in answer.rows] == list(range(len(people)))
    for person, row in zip(people, answer.rows, strict=True):
        raw_row = raw.row("social-security", person)
        got = {v.field: v for v in row.values}
        assert sorted(got) == sorted(f.field for f in spec.fields)
        assert got["contribution_months"].value.bool_value == \
            (raw_row["contribution_months"] >= 12)
        assert got["employer_code"].value.string_value != raw_row["employer_code"]


def test_a_subset_of_the_granted_fields_is_answered(stack: Stack, key: Ed25519PrivateKey,
                                                    people: list[str]) -> None:
    a = agreement(stack, LOAN_SS)
    only = [f for f in make_spec(a, people).fields if f.field == "insured_status"]
    answer = fetch(stack, sign_spec(make_spec(a, people, fields=only), key))
    assert all([v.field for v in r.values] == ["insured_status"] for r in answer.rows)


def flip_spec_byte(signed: connector_pb2.SignedReleaseSpec) -> connector_pb2.SignedReleaseSpec:
    data = bytearray(signed.spec)
    data[len(data) // 2] ^= 0x01
    return connector_pb2.SignedReleaseSpec(spec=bytes(data), signature=signed.signature,
                                           key_id=signed.key_id)


def flip_signature_byte(signed: connector_pb2.SignedReleaseSpec
                        ) -> connector_pb2.SignedReleaseSpec:
    sig = bytearray(signed.signature)
    sig[0] ^= 0x80
    return connector_pb2.SignedReleaseSpec(spec=signed.spec, signature=bytes(sig),
                                           key_id=signed.key_id)




def test_tampered_spec_is_unauthenticated(stack: Stack, raw: RawData, key: Ed25519PrivateKey,
                                          people: list[str]) -> None:
    signed = sign_spec(make_spec(agreement(stack, LOAN_SS), people), key)
    refused(stack, flip_spec_byte(signed), UNAUTH, raw, people)
    refused(stack, flip_signature_byte(signed), UNAUTH, raw, people)
    # widening the signed bytes (a field appended after signing) breaks the signature too
    extra = connector_pb2.ReleaseSpec()
    extra.ParseFromString(signed.spec)
    extra.fields.add(field="name", transform="plain", params_json="{}")
    widened = connector_pb2.SignedReleaseSpec(spec=extra.SerializeToString(),
                                              signature=signed.signature, key_id=signed.key_id)
    refused(stack, widened, UNAUTH, raw, people)
    # the untouched original still works: the refusals did not burn its request id
    assert fetch(stack, signed).rows


def test_spec_signed_by_another_key_is_unauthenticated(stack: Stack, raw: RawData,
                                                       key: Ed25519PrivateKey,
                                                       people: list[str]) -> None:
    rogue = Ed25519PrivateKey.generate()
    spec = make_spec(agreement(stack, LOAN_SS), people)
    refused(stack, sign_spec(spec, rogue), UNAUTH, raw, people)       # unknown key id
    forged = sign_spec(spec, rogue)
    forged.key_id = key_id(key.public_key())                          # claims the real key
    refused(stack, forged, UNAUTH, raw, people)
    unsigned = connector_pb2.SignedReleaseSpec(spec=spec.SerializeToString(),
                                               key_id=key_id(key.public_key()))
    refused(stack, unsigned, UNAUTH, raw, people)


def test_expired_or_not_fresh_spec_is_denied(stack: Stack, raw: RawData, key: Ed25519PrivateKey,
                                             people: list[str]) -> None:
    a = agreement(stack, LOAN_SS)
    now_ms = int(time.time() * 1000)
    expired = make_spec(a, people, issued_at_ms=now_ms - 60_000, expires_at_ms=now_ms - 30_000)
    refused(stack, sign_spec(expired, key), DENIED, raw, people)
    future = make_spec(a, people, issued_at_ms=now_ms + 600_000, expires_at_ms=now_ms + 630_000)
    refused(stack, sign_spec(future, key), DENIED, raw, people)
    ancient = make_spec(a, people, issued_at_ms=now_ms - 86_400_000)  # before the connector ran
    refused(stack, sign_spec(ancient, key), DENIED, raw, people)


def test_replayed_request_id_is_denied(stack: Stack, raw: RawData, key: Ed25519PrivateKey,
                                       people: list[str]) -> None:
    a = agreement(stack, LOAN_SS)
    signed = sign_spec(make_spec(a, people), key)
    assert fetch(stack, signed).rows
    refused(stack, signed, DENIED, raw, people)
    # a fresh signature over a new spec that reuses the request id is a replay as well
    again = make_spec(a, people[:1])
    again.request_id = connector_pb2.ReleaseSpec.FromString(signed.spec).request_id
    refused(stack, sign_spec(again, key), DENIED, raw, people)
    refused(stack, sign_spec(make_spec(a, people, request_id=""), key), DENIED, raw, people)


def _field(a: Agreement, name: str, **over: Any) -> common_pb2.FieldRelease:
    g = a.grant(name)
    assert g is not None
    return common_pb2.FieldRelease(field=name, transform=over.get("transform", g.transform),
                                   params_json=over.get("params_json",
                                                        params_json(g.param_dict)))


WIDENINGS: dict[str, Callable[[Agreement, list[str]], connector_pb2.ReleaseSpec]] = {
    "ungranted-field": lambda a, p: make_spec(a, p, fields=[
        _field(a, "insured_status"),
        common_pb2.FieldRelease(field="name", transform="plain", params_json="{}")]),
    "ungranted-field-even-masked": lambda a, p: make_spec(a, p, fields=[
        common_pb2.FieldRelease(field="name", transform="mask",
                                params_json='{"keep_first":1}')]),
    "predicate-as-plain": lambda a, p: make_spec(a, p, fields=[
        _field(a, "contribution_months", transform="plain", params_json="{}")]),
    "pseudonym-as-plain": lambda a, p: make_spec(a, p, fields=[
        _field(a, "employer_code", transform="plain", params_json="{}")]),
    "predicate-threshold-changed": lambda a, p: make_spec(a, p, fields=[
        _field(a, "contribution_months", params_json='{"op":">=","value":1}')]),
    "predicate-op-changed": lambda a, p: make_spec(a, p, fields=[
        _field(a, "contribution_months", params_json='{"op":"<","value":12}')]),
    "repeated-field": lambda a, p: make_spec(a, p, fields=[
        _field(a, "insured_status"), _field(a, "insured_status")]),
    "no-fields": lambda a, p: make_spec(a, p, fields=[]),
    "another-org": lambda a, p: make_spec(a, p, requester_org="housing-bureau"),
    "another-purpose": lambda a, p: make_spec(a, p, purpose="withdrawal-review"),
    "wrong-agreement-hash": lambda a, p: make_spec(a, p, agreement=common_pb2.AgreementRef(
        id=a.id, version=a.version, content_hash="0" * 64)),
    "wrong-agreement-version": lambda a, p: make_spec(a, p, agreement=common_pb2.AgreementRef(
        id=a.id, version=a.version + 1, content_hash=a.content_hash)),
    "unknown-agreement-id": lambda a, p: make_spec(a, p, agreement=common_pb2.AgreementRef(
        id="hpf-loan-ss-wide", version=1, content_hash=a.content_hash)),
    "another-partners-agreement": lambda a, p: make_spec(a, p, agreement=common_pb2.AgreementRef(
        id="hpf-loan-bank", version=1, content_hash=a.content_hash)),
    "another-partner": lambda a, p: make_spec(a, p, partner="bank"),
}


@pytest.mark.parametrize("case", sorted(WIDENINGS))
def test_widened_spec_is_denied(stack: Stack, raw: RawData, key: Ed25519PrivateKey,
                                people: list[str], case: str) -> None:
    spec = WIDENINGS[case](agreement(stack, LOAN_SS), people)
    refused(stack, sign_spec(spec, key), DENIED, raw, people)


def test_agreement_of_another_org_and_purpose_cannot_be_borrowed(
        stack: Stack, raw: RawData, key: Ed25519PrivateKey, people: list[str]) -> None:
    """HPF's spec pinned to the housing-bureau agreement (district bands) is refused."""
    housing = agreement(stack, "housing-bureau-stats-ss")
    spec = make_spec(housing, people, requester_org="hpf-changzhou", purpose="loan-eligibility")
    refused(stack, sign_spec(spec, key), DENIED, raw, people)


def test_more_subjects_than_the_agreement_allows_is_denied(
        stack: Stack, raw: RawData, key: Ed25519PrivateKey) -> None:
    a = agreement(stack, "hpf-withdrawal-ss")
    ids = [i for i in raw.ordered if i in raw.rows["social-security"]]
    limit = a.limits.max_subjects_per_request
    refused(stack, sign_spec(make_spec(a, ids[:limit + 1]), key), DENIED, raw, ids[:3])
    assert len(fetch(stack, sign_spec(make_spec(a, ids[:limit]), key)).rows) == limit


def test_bad_subject_in_a_signed_spec_is_invalid(stack: Stack, raw: RawData,
                                                 key: Ed25519PrivateKey,
                                                 people: list[str]) -> None:
    broken = people[0][:17] + ("0" if people[0][17] != "0" else "1")
    spec = make_spec(agreement(stack, LOAN_SS), [people[1], broken])
    err = refused(stack, sign_spec(spec, key), grpc.StatusCode.INVALID_ARGUMENT, raw, people)
    assert "spec.subjects[1]" in err.details()
    assert broken not in err.details()


def test_spec_sent_to_the_wrong_connector_is_denied(stack: Stack, raw: RawData,
                                                    key: Ed25519PrivateKey,
                                                    people: list[str]) -> None:
    spec = make_spec(agreement(stack, LOAN_SS), people)
    refused(stack, sign_spec(spec, key), DENIED, raw, people, partner="bank")
    # and the refusal at the bank did not spend the request id at social security
    assert fetch(stack, sign_spec(spec, key)).rows


@pytest.mark.parametrize("agreement_id", ["hpf-risk-ss", "hpf-stats-ss"])
def test_a_withheld_grant_is_never_fetched_in_the_clear(
        stack: Stack, raw: RawData, key: Ed25519PrivateKey, people: list[str],
        agreement_id: str) -> None:
    """A correctly signed spec for an ``encrypted`` or ``aggregate`` grant (what a compromised
    gateway would send to read the plain column) is refused by the connector itself."""
    spec = make_spec(agreement(stack, agreement_id), people[:1])
    err = refused(stack, sign_spec(spec, key), DENIED, raw, people)
    assert "plain values only" in (err.details() or "")


def test_a_query_for_an_encrypted_field_is_refused_and_audited(stack: Stack, raw: RawData,
                                                                people: list[str]) -> None:
    """Issue 4: a field granted only ``encrypted`` is refused in a plain Query (audited)."""
    before = len(stack.audit())
    err = code_of(lambda: stack.query("loan-risk-scoring", people[:1],
                                      {"bank": ["income_avg_12m"]}))
    assert err.code() == DENIED
    assert "only as encrypted" in (err.details() or "")
    entries = stack.audit()[before:]
    assert [(e.decision, e.purpose) for e in entries] == [("deny", "loan-risk-scoring")]
