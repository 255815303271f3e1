"""Advisories: one test per attack tried against pgw (STYLE: pyjwt's ``tests/test_advisory.py``).

This file is the index. Every test is short, runs end to end through real gRPC against a real
gateway and real connectors (one in-process stack for the module, on port 0), and its docstring
names the attack. The deeper batteries live beside the features: ``tests/integration``
(``test_auth``, ``test_connector_spec``, ``test_decisions``, ``test_validation``),
``tests/admin``, ``tests/officer`` and ``tests/hardening`` (faults, fuzzing, replicas).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pgw_it_harness import (  # noqa: E402 - registered by tests/conftest.py
    HOUSING,
    HPF,
    LoopThread,
    RawData,
    Stack,
    code_of,
    copy_policies,
    isolated_cfg,
    make_spec,
    metadata,
    start_stack,
)

from connectors.sdk._spec import sign_spec  # noqa: E402
from gateway.auth._jwks import b64url_encode  # noqa: E402
from gateway.budgets import quota_violations  # noqa: E402
from gateway.config import load_config  # noqa: E402
from gateway.keys import load_private_key  # noqa: E402
from gateway.pb.pgw.v1 import (  # noqa: E402
    admin_pb2,
    admin_pb2_grpc,
    audit_pb2,
    audit_pb2_grpc,
    connector_pb2,
    gateway_pb2,
)
from gateway.policy import Agreement, load_policies  # noqa: E402
from gateway.status import bad_request_fields, refused_fields  # noqa: E402
from gateway.workdir import init_workdir  # noqa: E402

UNAUTH = grpc.StatusCode.UNAUTHENTICATED
DENIED = grpc.StatusCode.PERMISSION_DENIED
INVALID = grpc.StatusCode.INVALID_ARGUMENT
GENERIC = "authentication failed: present a valid bearer token"
EDU = {"education": ["highest_degree"]}
SQL = ["' OR '1'='1", "1; DROP TABLE audit_entries; --", "x' UNION SELECT name FROM people --"]


@pytest.fixture(scope="module")
def stack(loop: LoopThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("advisories")
    init_workdir(root, people=300, seed=20261207)
    s = start_stack(loop, isolated_cfg(load_config(root / "pgw.toml"), root / "stack"))
    yield s
    s.close()


@pytest.fixture(scope="module")
def raw(stack: Stack) -> RawData:
    return RawData(stack.cfg)


@pytest.fixture(scope="module")
def people(raw: RawData) -> list[str]:
    return raw.in_all[:3]


# -- helpers (minimal copies of the integration tests' crafting code) -------------------------

def _segment(obj: Any) -> str:
    return b64url_encode(json.dumps(obj, separators=(",", ":")).encode())


def craft(header: dict[str, Any], claims: dict[str, Any],
          sign: Callable[[bytes], bytes] | None = None) -> str:
    signing_input = f"{_segment(header)}.{_segment(claims)}"
    return f"{signing_input}.{b64url_encode(sign(signing_input.encode()) if sign else b'')}"


def claims(stack: Stack, **over: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": stack.cfg.issuer, "aud": stack.cfg.audience, "sub": "officer-7", "org": HPF,
            "roles": ["requester"], "iat": now, "nbf": now, "exp": now + 600,
            "jti": str(uuid.uuid4())} | over


def ed_kid(stack: Stack) -> str:
    return stack.issuer.signing_kid("EdDSA")


def ed_sign(stack: Stack) -> Callable[[bytes], bytes]:
    key = stack.issuer.private_key(ed_kid(stack))
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    return key.sign


def refused_token(stack: Stack, people: list[str], token: str) -> None:
    """The query is UNAUTHENTICATED with the generic message, and nothing was logged."""
    before = len(stack.audit())
    err = code_of(lambda: stack.query("loan-eligibility", people, EDU, token=token))
    assert err.code() == UNAUTH, (err.code(), err.details())
    assert err.details() == GENERIC
    assert len(stack.audit()) == before


def agreement(stack: Stack, agreement_id: str) -> Agreement:
    return load_policies(stack.cfg.policies).agreement(agreement_id)


def fetch(stack: Stack, signed: connector_pb2.SignedReleaseSpec,
          partner: str = "social-security") -> connector_pb2.FetchResponse:
    return stack.connector_stub(partner).Fetch(connector_pb2.FetchRequest(signed_spec=signed),
                                               timeout=10)


def gateway_key(stack: Stack) -> ed25519.Ed25519PrivateKey:
    return load_private_key(stack.cfg.spec_key)


# -- tokens ------------------------------------------------------------------------------------

def test_token_alg_none(stack: Stack, people: list[str]) -> None:
    """Attack: an unsigned token (``alg: none``) with requester claims."""
    refused_token(stack, people, craft({"alg": "none", "typ": "JWT", "kid": ed_kid(stack)},
                                       claims(stack)))


def test_token_hs256_keyed_with_the_public_key(stack: Stack, people: list[str]) -> None:
    """Attack: algorithm confusion, HS256 with the issuer's public key as the HMAC secret."""
    public = stack.issuer.private_key(ed_kid(stack)).public_key().public_bytes(
        Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    token = craft({"alg": "HS256", "typ": "JWT", "kid": ed_kid(stack)}, claims(stack),
                  lambda data: hmac.new(public, data, hashlib.sha256).digest())
    refused_token(stack, people, token)


def test_token_unknown_kid(stack: Stack, people: list[str]) -> None:
    """Attack: a token signed by the attacker's own key under a kid the JWKS does not list."""
    token = craft({"alg": "EdDSA", "kid": "attacker-key"}, claims(stack),
                  ed25519.Ed25519PrivateKey.generate().sign)
    refused_token(stack, people, token)


def test_token_expired(stack: Stack, people: list[str]) -> None:
    """Attack: replaying a captured token an hour after it expired."""
    refused_token(stack, people, stack.issuer.issue(HPF, ["requester"], ttl_s=60,
                                                    now=time.time() - 3600))


@pytest.mark.parametrize("claim", ["aud", "iss"])
def test_token_for_another_audience_or_issuer(stack: Stack, people: list[str],
                                              claim: str) -> None:
    """Attack: a validly signed token minted for another service (aud) or by another IdP
    (iss) presented to this gateway."""
    value = "another-gateway" if claim == "aud" else "https://idp.evil.example"
    refused_token(stack, people, craft({"alg": "EdDSA", "kid": ed_kid(stack)},
                                       claims(stack, **{claim: value}), ed_sign(stack)))


def test_token_of_another_org_cannot_use_this_orgs_agreement(stack: Stack,
                                                             people: list[str]) -> None:
    """Attack: the housing bureau, with its own valid token, asks under HPF's loan agreement."""
    before = len(stack.audit())
    err = code_of(lambda: stack.query("loan-eligibility", people, EDU,
                                      token=stack.token(HOUSING)))
    assert err.code() == DENIED, (err.code(), err.details())
    (entry,) = stack.audit()[before:]
    assert (entry.decision, entry.requester_org, entry.released) == ("deny", HOUSING, ())


# -- release specs (straight to a connector, as a compromised hub or a network peer) ----------

def test_spec_tampered_after_signing(stack: Stack, people: list[str]) -> None:
    """Attack: flip bytes of a signed spec (e.g. to add a subject) and keep the signature."""
    signed = sign_spec(make_spec(agreement(stack, "hpf-loan-ss"), people), gateway_key(stack))
    body = bytearray(signed.spec)
    body[-3] ^= 0x01
    forged = connector_pb2.SignedReleaseSpec(spec=bytes(body), signature=signed.signature,
                                             key_id=signed.key_id)
    assert code_of(lambda: fetch(stack, forged)).code() == UNAUTH


def test_spec_replayed(stack: Stack, people: list[str]) -> None:
    """Attack: resend a spec the connector already answered (captured on the wire)."""
    signed = sign_spec(make_spec(agreement(stack, "hpf-loan-ss"), people), gateway_key(stack))
    assert fetch(stack, signed).rows
    assert code_of(lambda: fetch(stack, signed)).code() == DENIED


def test_spec_expired(stack: Stack, people: list[str]) -> None:
    """Attack: replay a spec after its expiry (with a fresh request id, so not a replay)."""
    now_ms = int(time.time() * 1000)
    spec = make_spec(agreement(stack, "hpf-loan-ss"), people, issued_at_ms=now_ms - 60_000,
                    expires_at_ms=now_ms - 30_000)
    assert code_of(lambda: fetch(stack, sign_spec(spec, gateway_key(stack)))).code() == DENIED


def test_spec_widened_beyond_the_partners_agreement(stack: Stack, people: list[str]) -> None:
    """Attack: a compromised gateway signs a spec adding an ungranted field (``name``)."""
    a = agreement(stack, "hpf-loan-ss")
    spec = make_spec(a, people)
    spec.fields.add(field="name", transform="plain", params_json="{}")
    err = code_of(lambda: fetch(stack, sign_spec(spec, gateway_key(stack))))
    assert err.code() == DENIED
    assert people[0] not in (err.details() or "")


def test_spec_signed_with_the_wrong_key(stack: Stack, people: list[str]) -> None:
    """Attack: anyone on the partner network signs a spec with a key of their own."""
    spec = make_spec(agreement(stack, "hpf-loan-ss"), people)
    signed = sign_spec(spec, ed25519.Ed25519PrivateKey.generate())
    assert code_of(lambda: fetch(stack, signed)).code() == UNAUTH


# -- policy bypass -----------------------------------------------------------------------------

def test_unlisted_field(stack: Stack, people: list[str]) -> None:
    """Attack: slip one ungranted field (``bank.card_number``) in among granted ones; the whole
    request is refused, the field named, nothing released, the refusal audited."""
    before = len(stack.audit())
    err = code_of(lambda: stack.query("loan-eligibility", people,
                                      {"bank": ["overdue_flag", "card_number"]}))
    assert err.code() == DENIED
    assert refused_fields(err) == ["bank.card_number"]
    assert [(e.decision, e.released) for e in stack.audit()[before:]] == [("deny", ())]


def test_encrypted_only_field_in_a_plain_query(stack: Stack, people: list[str]) -> None:
    """Attack: ask in the clear for a field the agreement releases only as a ciphertext."""
    err = code_of(lambda: stack.query("loan-risk-scoring", people[:1],
                                      {"bank": ["income_avg_12m"]}))
    assert err.code() == DENIED
    assert "only as encrypted" in (err.details() or "")


def test_wrong_purpose(stack: Stack, people: list[str]) -> None:
    """Attack: ask for loan fields under another declared purpose (withdrawal review)."""
    err = code_of(lambda: stack.query("withdrawal-review", people, {"bank": ["overdue_flag"]}))
    assert err.code() == DENIED


def test_role_escalation(stack: Stack, people: list[str]) -> None:
    """Attack: use a role the agreements do not name (an auditor querying data), a requester
    reading the audit log, and a token claiming a role that does not exist."""
    err = code_of(lambda: stack.query("loan-eligibility", people, EDU,
                                      token=stack.token(roles=["auditor"])))
    assert err.code() == DENIED
    audit = audit_pb2_grpc.AuditServiceStub(stack.channel())
    err = code_of(lambda: audit.Search(audit_pb2.SearchRequest(limit=5), timeout=10,
                                       metadata=metadata(stack.token())))
    assert err.code() == DENIED
    forged = craft({"alg": "EdDSA", "kid": ed_kid(stack)}, claims(stack, roles=["superuser"]),
                   ed_sign(stack))
    refused_token(stack, people, forged)


PROPOSAL = """id: hpf-withdrawal-bank
version: 1
requester_org: hpf-changzhou
roles: [requester]
purpose: withdrawal-review
partner: bank
legal_basis: PIPL art. 13(3) and art. 6 (minimum necessary).
valid_from: 2026-01-01
valid_until: 2027-12-31
fields:
  income_avg_12m: {transform: generalize, edges: [3000, 5000, 8000]}
limits:
  max_subjects_per_request: 20
  requests_per_minute: 60
"""


def test_proposer_approving_their_own_proposal(stack: Stack) -> None:
    """Attack: one person with both policy-admin and auditor roles proposes an agreement and
    approves it alone (four eyes bypass)."""
    admin = admin_pb2_grpc.AdminServiceStub(stack.channel())
    both = metadata(stack.token(roles=["policy-admin", "auditor"], subject="admin-2"))
    record = admin.ProposeAgreement(admin_pb2.ProposeAgreementRequest(agreement_yaml=PROPOSAL),
                                    metadata=both, timeout=10).record
    err = code_of(lambda: admin.ApproveAgreement(admin_pb2.ApproveAgreementRequest(
        proposal_id=record.proposal_id, content_hash=record.agreement.content_hash),
        metadata=both, timeout=10))
    assert err.code() == DENIED


def test_proposal_with_a_non_scalar_purpose(stack: Stack) -> None:
    """Attack: crash the agreement parser with a YAML list where a name belongs
    (``purpose: []`` once raised TypeError: INTERNAL); now INVALID_ARGUMENT naming it."""
    admin = admin_pb2_grpc.AdminServiceStub(stack.channel())
    doc = PROPOSAL.replace("purpose: withdrawal-review", "purpose: [withdrawal-review]")
    err = code_of(lambda: admin.ProposeAgreement(
        admin_pb2.ProposeAgreementRequest(agreement_yaml=doc),
        metadata=metadata(stack.token(roles=["policy-admin"], subject="admin-9")), timeout=10))
    assert err.code() == INVALID, (err.code(), err.details())
    assert any("purpose" in f for f in bad_request_fields(err))


# -- injection ---------------------------------------------------------------------------------

def _tables_intact(stack: Stack) -> None:
    for partner in ("social-security", "bank"):
        db = stack.cfg.connector(partner).database
        with sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True) as conn:
            assert conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] > 0


@pytest.mark.parametrize("text", SQL)
def test_sql_shaped_subject_ids(stack: Stack, people: list[str], text: str) -> None:
    """Attack: SQL in a subject id, hoping it reaches a partner's query; it is refused at
    validation (GB 11643 checksum), named by position, never quoted back."""
    err = code_of(lambda: stack.query("loan-eligibility", [people[0], text], EDU))
    assert err.code() == INVALID
    assert bad_request_fields(err) == ["subjects[1]"]
    assert text not in (err.details() or "")
    _tables_intact(stack)


@pytest.mark.parametrize("text", SQL)
def test_sql_shaped_field_names(stack: Stack, people: list[str], text: str) -> None:
    """Attack: SQL in a field name or partner name, hoping it is spliced into a SELECT."""
    err = code_of(lambda: stack.query("loan-eligibility", people, {"bank": [text]}))
    assert err.code() == INVALID
    assert bad_request_fields(err) == ["selections[0].fields[0]"]
    err = code_of(lambda: stack.query("loan-eligibility", people, {text: ["overdue_flag"]}))
    assert err.code() == INVALID
    _tables_intact(stack)


def test_sql_shaped_audit_search(stack: Stack) -> None:
    """Attack: an officer's search filters carrying SQL; they are values, not SQL."""
    audit = audit_pb2_grpc.AuditServiceStub(stack.channel())
    md = metadata(stack.token(roles=["auditor"]))
    size = len(stack.audit())
    for text in SQL:
        try:
            answer = audit.Search(audit_pb2.SearchRequest(requester_org=text, purpose=text,
                                                          limit=50), metadata=md, timeout=10)
            assert list(answer.entries) == []
        except grpc.RpcError as err:
            assert err.code() == INVALID, (err.code(), err.details())
    assert len(stack.audit()) >= size  # the log is all there


# -- oversized messages ------------------------------------------------------------------------

def test_oversized_request(stack: Stack) -> None:
    """Attack: a 17 MiB request to exhaust the gateway's memory; refused by the 16 MiB limit."""
    err = code_of(lambda: stack.stub.Query(gateway_pb2.QueryRequest(purpose="x" * (17 << 20)),
                                           metadata=metadata(stack.token()), timeout=30))
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_too_many_subjects(stack: Stack, raw: RawData) -> None:
    """Attack: bulk extraction, one query for more people than the agreement allows."""
    a = agreement(stack, "hpf-loan-edu")
    many = raw.in_all[:a.limits.max_subjects_per_request + 1]
    if len(many) <= a.limits.max_subjects_per_request:
        pytest.skip("not enough synthetic people for this agreement's limit")
    err = code_of(lambda: stack.query("loan-eligibility", many, EDU))
    assert err.code() == DENIED, (err.code(), err.details())




# -- inference budgets -------------------------------------------------------------------------
# A second stack on a policy copy with tight budgets: hpf-loan-ss 6 queries per subject a day;
# hpf-withdrawal-ss also grants contribution_months >= 24 (a second threshold on the same
# value) with 4 a day; hpf-stats-ss 3 queries per cohort a day; hpf-loan-edu 60 subjects a day.

BUDGET_EDITS = {
    "hpf-loan-ss": [("queries_per_subject_per_day: 20", "queries_per_subject_per_day: 6")],
    "hpf-withdrawal-ss": [
        ("  name: {transform: mask, keep_first: 1}\n",
         "  name: {transform: mask, keep_first: 1}\n"
         '  contribution_months: {transform: predicate, op: ">=", value: 24}\n'),
        ("  requests_per_minute: 600\n",
         "  requests_per_minute: 600\n  queries_per_subject_per_day: 4\n")],
    "hpf-stats-ss": [("queries_per_cohort_per_day: 6", "queries_per_cohort_per_day: 3")],
    "hpf-loan-edu": [("subjects_per_day: 20000", "subjects_per_day: 60")],
}
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED


@pytest.fixture(scope="module")
def budget_stack(loop: LoopThread, stack: Stack,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    where = tmp_path_factory.mktemp("budget-advisories")
    policies = copy_policies(stack.cfg.policies, where / "policies", {})
    for stem, edits in BUDGET_EDITS.items():
        path = policies / "agreements" / f"{stem}.yaml"
        text = path.read_text()
        for old, new in edits:
            assert text.count(old) == 1, (stem, old)
            text = text.replace(old, new)
        path.write_text(text)
    s = start_stack(loop, isolated_cfg(load_config(stack.cfg.path), where / "stack",
                                       policies=policies))
    yield s
    s.close()


def _no_id_in_refusal(stack: Stack, err: grpc.RpcError, ids: list[str]) -> None:
    """The refusal names the limit, never a person: not in the message, not in the audit."""
    assert err.code() == EXHAUSTED, (err.code(), err.details())
    entry = stack.audit()[-1]
    assert (entry.decision, entry.released) == ("deny", ())
    text = f"{err.details()} {quota_violations(err)} {entry.reason}"
    assert not any(i in text for i in ids)


def test_bisection_across_agreements_on_one_subject(budget_stack: Stack, raw: RawData) -> None:
    """Attack: alternate two agreements whose predicates cut the same value at different
    thresholds (contribution_months >= 12 for loans, >= 24 for withdrawals) to narrow one
    person's value, and repeat to watch it move. Both spend one per-person budget: at most 6
    answers a day in all, at most 4 of them under the stricter agreement."""
    person = raw.in_all[100]
    outcomes = []
    for i in range(10):
        purpose = "withdrawal-review" if i % 2 else "loan-eligibility"
        try:
            budget_stack.query(purpose, [person], {"social-security": ["contribution_months"]})
            outcomes.append("ok")
        except grpc.RpcError as err:
            _no_id_in_refusal(budget_stack, err, [person])
            assert quota_violations(err) == [("subject#0", "limits.queries_per_subject_per_day"
                                              f" = {4 if i % 2 else 6}")]
            outcomes.append("refused")
    assert outcomes == ["ok"] * 5 + ["refused", "ok", "refused", "refused", "refused"]


def test_aggregate_differencing_over_time(budget_stack: Stack, raw: RawData) -> None:
    """Attack: ask the same cohort's sum again and again, so that the difference between two
    answers is one person who joined or left. The cohort's daily budget stops the series; the
    refusal names the cohort attribute, never its value; other cohorts are unaffected."""
    from gateway.client import ComputeClient
    from gateway.privacy import HeKeys

    keys = HeKeys.ckks()
    sizes: dict[str, int] = {}
    for row in raw.rows["social-security"].values():
        sizes[row["district_code"]] = sizes.get(row["district_code"], 0) + 1
    big, other = sorted(sizes, key=lambda d: -sizes[d])[:2]  # cohorts above min_k

    async def total(district: str) -> object:
        async with ComputeClient(budget_stack.address, budget_stack.token(), keys=keys) as c:
            return await c.aggregate("social-security", "contribution_base", "sum",
                                     "district_code", district, purpose="statistics")

    for _ in range(3):
        budget_stack.loop.run(total(big))
    err = code_of(lambda: budget_stack.loop.run(total(big)))
    _no_id_in_refusal(budget_stack, err, [big])
    assert quota_violations(err) == [("cohort:district_code",
                                      "limits.queries_per_cohort_per_day = 3")]
    budget_stack.loop.run(total(other))


def test_volume_exhaustion(budget_stack: Stack, raw: RawData) -> None:
    """Attack: bulk extraction in many small requests, each within max_subjects_per_request.
    The agreement's daily subject volume is a hard total; what remains of it stays usable."""
    batch = raw.in_all[:70]
    budget_stack.query("loan-eligibility", batch[:50], EDU)
    err = code_of(lambda: budget_stack.query("loan-eligibility", batch[50:70], EDU))
    _no_id_in_refusal(budget_stack, err, batch)
    assert quota_violations(err) == [("agreement:hpf-loan-edu", "limits.subjects_per_day = 60")]
    budget_stack.query("loan-eligibility", batch[50:60], EDU)
