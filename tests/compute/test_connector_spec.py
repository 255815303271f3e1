"""Encrypt and Aggregate specs sent straight to a connector: only a fresh, untampered spec
within the partner's own agreement copy releases ciphertexts."""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import pytest
from pgw_compute_harness import HPF, RawData, Stack

from connectors.sdk._compute import context_digest, subjects_digest, unpack_presence
from connectors.sdk._spec import sign_spec
from gateway.keys import load_private_key
from gateway.pb.pgw.v1 import (
    common_pb2,
    compute_pb2,
    compute_pb2_grpc,
    connector_pb2,
    connector_pb2_grpc,
)
from gateway.policy import load_policies
from gateway.privacy import HeKeys, decrypt_vector


@pytest.fixture
def bank(stack: Stack) -> Iterator[compute_pb2_grpc.PartnerComputeServiceStub]:
    with grpc.insecure_channel(stack.connector_address("bank"), options=[
            ("grpc.max_receive_message_length", 16 << 20)]) as channel:
        yield compute_pb2_grpc.PartnerComputeServiceStub(channel)


def spec_for(stack: Stack, subjects: list[str], material: bytes, *, field: str = "income_avg_12m",
             model: str = "hpf-loan-risk", transform: str = "encrypted",
             params: str | None = None, org: str = HPF, operation: str = "encrypt",
             rid: str | None = None) -> connector_pb2.ReleaseSpec:
    agreement = load_policies(stack.cfg.policies).agreement("hpf-risk-bank")
    grant = agreement.grant("income_avg_12m")
    assert grant is not None
    now = int(time.time() * 1000)
    espec = compute_pb2.EncryptSpec(field=field, op="linear", model=model,
                                    context_sha256=context_digest(material),
                                    subjects_sha256=subjects_digest(subjects),
                                    subject_count=len(subjects), chunk_slots=4096)
    return connector_pb2.ReleaseSpec(
        request_id=rid or f"direct-{time.monotonic_ns()}", requester_org=org,
        purpose="loan-risk-scoring",
        agreement=common_pb2.AgreementRef(id=agreement.id, version=agreement.version,
                                          content_hash=agreement.content_hash),
        partner="bank", fields=[common_pb2.FieldRelease(
            field=field, transform=transform,
            params_json=grant.params_json if params is None else params)],
        issued_at_ms=now, expires_at_ms=now + 30_000, operation=operation,
        operation_spec=espec.SerializeToString(deterministic=True))


def requests(signed: connector_pb2.SignedReleaseSpec, material: bytes,
             subjects: list[str]) -> Iterator[compute_pb2.EncryptRequest]:
    yield compute_pb2.EncryptRequest(start=compute_pb2.EncryptStart(signed_spec=signed,
                                                                    public_context=material))
    yield compute_pb2.EncryptRequest(subjects=compute_pb2.SubjectChunk(
        ids="".join(subjects).encode()))


def call(bank: compute_pb2_grpc.PartnerComputeServiceStub, signed: connector_pb2.SignedReleaseSpec,
         material: bytes, subjects: list[str]) -> list[compute_pb2.EncryptResponse]:
    return list(bank.Encrypt(requests(signed, material, subjects), timeout=30))


def refused(fn: object) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        fn()  # type: ignore[operator]
    return info.value.code()  # type: ignore[no-any-return]


def test_valid_spec_releases_only_ciphertexts(stack: Stack, raw: RawData, he_keys: HeKeys,
                                              bank: compute_pb2_grpc.PartnerComputeServiceStub
                                              ) -> None:
    key = load_private_key(stack.cfg.spec_key)
    material = he_keys.public_material()
    subjects = raw.ordered[:6]
    answer = call(bank, sign_spec(spec_for(stack, subjects, material), key), material, subjects)
    summary = answer[0].summary
    found = unpack_presence(summary.found, 6)
    assert found == [s in raw.rows["bank"] for s in subjects]
    got = decrypt_vector(he_keys, [m.chunk.ciphertext for m in answer[1:]], 6)
    want = [raw.value("bank", "income_avg_12m", s) for s in subjects]
    assert max(abs(g - w) for g, w in zip(got, want, strict=True)) < 1e-2


def test_tampered_spec(stack: Stack, raw: RawData, he_keys: HeKeys,
                       bank: compute_pb2_grpc.PartnerComputeServiceStub) -> None:
    key = load_private_key(stack.cfg.spec_key)
    material, subjects = he_keys.public_material(), raw.ordered[:2]
    signed = sign_spec(spec_for(stack, subjects, material), key)
    spec = connector_pb2.ReleaseSpec.FromString(signed.spec)
    spec.requester_org = "housing-bureau"
    signed.spec = spec.SerializeToString(deterministic=True)
    assert refused(lambda: call(bank, signed, material, subjects)) \
        == grpc.StatusCode.UNAUTHENTICATED


def test_replayed_spec(stack: Stack, raw: RawData, he_keys: HeKeys,
                       bank: compute_pb2_grpc.PartnerComputeServiceStub) -> None:
    key = load_private_key(stack.cfg.spec_key)
    material, subjects = he_keys.public_material(), raw.ordered[:2]
    signed = sign_spec(spec_for(stack, subjects, material), key)
    call(bank, signed, material, subjects)
    assert refused(lambda: call(bank, signed, material, subjects)) \
        == grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize("widen", [
    {"field": "card_number"},                       # a field the agreement does not grant
    {"model": "free-weights"},                      # a model the agreement does not list
    {"transform": "plain"},                         # a plain release through Encrypt
    {"params": '{"models":["hpf-loan-risk","x"],"ops":["linear"]}'},  # wider parameters
    {"org": "housing-bureau"},                      # another requester
    {"operation": "aggregate"},                     # another operation's spec
])
def test_widened_spec(stack: Stack, raw: RawData, he_keys: HeKeys,
                      bank: compute_pb2_grpc.PartnerComputeServiceStub,
                      widen: dict[str, str]) -> None:
    key = load_private_key(stack.cfg.spec_key)
    material, subjects = he_keys.public_material(), raw.ordered[:2]
    signed = sign_spec(spec_for(stack, subjects, material, **widen), key)
    assert refused(lambda: call(bank, signed, material, subjects)) \
        == grpc.StatusCode.PERMISSION_DENIED


def test_other_subjects_or_context_than_signed(stack: Stack, raw: RawData, he_keys: HeKeys,
                                               bank: compute_pb2_grpc.PartnerComputeServiceStub
                                               ) -> None:
    key = load_private_key(stack.cfg.spec_key)
    material, subjects = he_keys.public_material(), raw.ordered[:2]
    signed = sign_spec(spec_for(stack, subjects, material), key)
    assert refused(lambda: call(bank, signed, material, raw.ordered[2:4])) \
        == grpc.StatusCode.PERMISSION_DENIED
    other = HeKeys.ckks().public_material()
    signed = sign_spec(spec_for(stack, subjects, material), key)
    assert refused(lambda: call(bank, signed, other, subjects)) \
        == grpc.StatusCode.PERMISSION_DENIED


def test_encrypt_spec_refused_by_fetch(stack: Stack, raw: RawData, he_keys: HeKeys) -> None:
    key = load_private_key(stack.cfg.spec_key)
    spec = spec_for(stack, raw.ordered[:2], he_keys.public_material())
    with grpc.insecure_channel(stack.connector_address("bank")) as channel:
        stub = connector_pb2_grpc.ConnectorServiceStub(channel)
        assert refused(lambda: stub.Fetch(connector_pb2.FetchRequest(
            signed_spec=sign_spec(spec, key)), timeout=10)) == grpc.StatusCode.PERMISSION_DENIED


def test_aggregate_spec_below_k_and_wrong_attribute(stack: Stack, raw: RawData,
                                                    he_keys: HeKeys) -> None:
    key = load_private_key(stack.cfg.spec_key)
    agreement = load_policies(stack.cfg.policies).agreement("hpf-stats-ss")
    grant = agreement.grant("contribution_base")
    assert grant is not None
    material = he_keys.public_material()

    def signed(attribute: str, value: str) -> connector_pb2.SignedReleaseSpec:
        now = int(time.time() * 1000)
        return sign_spec(connector_pb2.ReleaseSpec(
            request_id=f"agg-{time.monotonic_ns()}", requester_org=HPF, purpose="statistics",
            agreement=common_pb2.AgreementRef(id=agreement.id, version=agreement.version,
                                              content_hash=agreement.content_hash),
            partner="social-security", fields=[common_pb2.FieldRelease(
                field="contribution_base", transform="aggregate",
                params_json=grant.params_json)],
            issued_at_ms=now, expires_at_ms=now + 30_000, operation="aggregate",
            operation_spec=compute_pb2.AggregateSpec(
                field="contribution_base", op="sum", cohort_attribute=attribute,
                cohort_value=value, context_sha256=context_digest(material)
            ).SerializeToString()), key)

    counts: dict[str, int] = {}
    for r in raw.rows["social-security"].values():
        counts[r["employer_code"]] = counts.get(r["employer_code"], 0) + 1
    small = min(counts, key=lambda e: counts[e])
    with grpc.insecure_channel(stack.connector_address("social-security")) as channel:
        stub = compute_pb2_grpc.PartnerComputeServiceStub(channel)
        assert refused(lambda: stub.Aggregate(compute_pb2.AggregateRequest(
            signed_spec=signed("employer_code", small), public_context=material),
            timeout=10)) == grpc.StatusCode.FAILED_PRECONDITION
        assert refused(lambda: stub.Aggregate(compute_pb2.AggregateRequest(
            signed_spec=signed("insured_status", "active"), public_context=material),
            timeout=10)) == grpc.StatusCode.PERMISSION_DENIED
