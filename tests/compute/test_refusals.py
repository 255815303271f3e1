"""Every refusal of Compute, with its status and its audit entry (decision deny, no release)."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterator

import grpc
import pytest
from pgw_compute_harness import LoopThread, RawData, Stack, code_of, start_stack

from gateway.audit import AuditEntry, SubjectSet, subject_set_items
from gateway.config import Config
from gateway.keys import load_secret
from gateway.privacy import HeKeys

EXTRA_MODELS = {
    # Same inputs, but no agreement lists this model.
    "hpf-other.yaml": """id: hpf-other
version: 1
requester_org: hpf-changzhou
purpose: loan-risk-scoring
description: An unapproved variant.
inputs:
  - {input: bank.income_avg_12m, weight: 1.0}
bias: 0
""",
    # A field granted only as an aggregate, fed to a linear model.
    "hpf-stats-linear.yaml": """id: hpf-stats-linear
version: 1
requester_org: hpf-changzhou
purpose: statistics
description: Reads an aggregate-only field per person.
inputs:
  - {input: social-security.contribution_base, weight: 1.0}
bias: 0
""",
}


@pytest.fixture(scope="module")
def wide(compute_loop: LoopThread, compute_cfg: Config, he_keys: HeKeys,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack whose gateway knows two extra models (the agreements are the shipped ones)."""
    where = tmp_path_factory.mktemp("wide")
    policies = where / "policies"
    shutil.copytree(compute_cfg.policies, policies)
    for name, text in EXTRA_MODELS.items():
        (policies / "models" / name).write_text(text)
    cfg = dataclasses.replace(
        compute_cfg, policies=policies, audit_dsn="sqlite:///" + str(where / "audit.db"),
        connectors={p: dataclasses.replace(c, witness_state=where / f"witness-{p}.json")
                    for p, c in compute_cfg.connectors.items()})
    s = start_stack(compute_loop, cfg, he_keys)
    yield s
    s.close()


def last_entry(stack: Stack) -> AuditEntry:
    return stack.audit()[-1]


def refused(stack: Stack, call: object, code: grpc.StatusCode, *words: str) -> AuditEntry:
    err = code_of(call)
    assert err.code() == code, err.details()
    entry = last_entry(stack)
    assert entry.kind == "compute" and entry.decision == "deny", entry
    assert entry.released == ()
    for word in words:
        assert word in entry.reason, (word, entry.reason)
    return entry


def test_org_outside_the_model(stack: Stack, raw: RawData) -> None:
    token = stack.token(org="housing-bureau")
    refused(stack, lambda: stack.score(raw.in_all[:2], token=token),
            grpc.StatusCode.PERMISSION_DENIED, "approved for hpf-changzhou")


def test_purpose_outside_the_model(stack: Stack, raw: RawData) -> None:
    entry = refused(stack, lambda: stack.score(raw.in_all[:2], purpose="loan-eligibility"),
                    grpc.StatusCode.PERMISSION_DENIED, "loan-risk-scoring")
    assert entry.subject_count == 2  # who was asked about is on the log, as pseudonyms


def test_unknown_model(stack: Stack, raw: RawData) -> None:
    refused(stack, lambda: stack.score(raw.in_all[:1], model="free-weights"),
            grpc.StatusCode.INVALID_ARGUMENT)


def test_model_not_listed_in_the_agreement(wide: Stack, raw: RawData) -> None:
    refused(wide, lambda: wide.score(raw.in_all[:2], model="hpf-other"),
            grpc.StatusCode.PERMISSION_DENIED, "bank.income_avg_12m", "hpf-other")


def test_aggregate_only_field_as_encrypted_input(wide: Stack, raw: RawData) -> None:
    refused(wide, lambda: wide.score(raw.in_all[:2], model="hpf-stats-linear",
                                     purpose="statistics"),
            grpc.StatusCode.PERMISSION_DENIED, "want encrypted")


def test_encrypted_only_field_as_aggregate(stack: Stack) -> None:
    refused(stack, lambda: stack.aggregate("bank", "income_avg_12m", "mean", "district_code",
                                           "320402", purpose="loan-risk-scoring"),
            grpc.StatusCode.PERMISSION_DENIED, "want aggregate")


def test_aggregate_outside_the_purpose(stack: Stack) -> None:
    refused(stack, lambda: stack.aggregate("social-security", "contribution_base", "sum",
                                           "district_code", "320402",
                                           purpose="loan-risk-scoring"),
            grpc.StatusCode.PERMISSION_DENIED)


def test_cohort_attribute_not_in_cohort_by(stack: Stack) -> None:
    refused(stack, lambda: stack.aggregate("social-security", "contribution_base", "mean",
                                           "insured_status", "active"),
            grpc.StatusCode.PERMISSION_DENIED, "cohort_by")


def test_small_cohort_refused_without_its_size(stack: Stack, raw: RawData) -> None:
    counts: dict[str, int] = {}
    for r in raw.rows["social-security"].values():
        counts[r["employer_code"]] = counts.get(r["employer_code"], 0) + 1
    small = min(counts, key=lambda e: counts[e])
    assert counts[small] < 10
    err = code_of(lambda: stack.aggregate("social-security", "contribution_base", "mean",
                                          "employer_code", small))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "min_k 10" in err.details() and f"got {counts[small]}" not in err.details()
    entry = last_entry(stack)
    assert (entry.kind, entry.decision, entry.released) == ("compute", "deny", ())
    assert "min_k" in entry.reason


def test_op_not_granted(stack: Stack) -> None:
    err = code_of(lambda: stack.aggregate("social-security", "contribution_base", "median",
                                          "district_code", "320402"))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert last_entry(stack).decision == "deny"


def resident_id(first17: str) -> str:
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    total = sum(int(c) * w for c, w in zip(first17, weights, strict=True))
    return first17 + "10X98765432"[total % 11]


def test_more_subjects_than_the_agreement_allows(stack: Stack) -> None:
    ids = [resident_id(f"3204021990{1 + i // 2800:02d}{1 + i // 100 % 28:02d}{i % 100:03d}")
           for i in range(4097)]  # the shipped agreements allow 4096 per request
    assert len(set(ids)) == 4097
    entry = refused(stack, lambda: stack.score(ids), grpc.StatusCode.PERMISSION_DENIED,
                    "max_subjects_per_request")
    # the refusal names all 4097 by a subject set, hashed off the event loop
    assert entry.subject_count == 4097 and entry.subject_set is not None
    key = load_secret(stack.cfg.audit_pseudonym_key)
    assert entry.subject_set == SubjectSet.of(subject_set_items(key, ids))
