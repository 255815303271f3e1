"""The loan risk score end to end through real servers: equals the plaintext model on the raw
SQLite rows within 1e-2, for random subsets of subjects (the weights are fixed by the model)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pgw_compute_harness import RawData, Stack

from gateway.audit import subject_pseudonym
from gateway.keys import load_secret
from gateway.policy import ApprovedModel, load_models


def model_of(stack: Stack) -> ApprovedModel:
    return load_models(stack.cfg.policies)["hpf-loan-risk"]


def plaintext(raw: RawData, model: ApprovedModel, subjects: list[str]) -> list[float]:
    return [model.bias + sum(i.weight * raw.value(i.partner, i.field, s) for i in model.inputs)
            for s in subjects]


def test_score_matches_plaintext_model(stack: Stack, raw: RawData) -> None:
    subjects = raw.in_all[:5]
    result = stack.score(subjects)
    want = plaintext(raw, model_of(stack), subjects)
    assert result.model == "hpf-loan-risk" and result.model_version == 1
    assert all(abs(g - w) < 1e-2 for g, w in zip(result.scores, want, strict=True))
    assert all(result.complete(i) for i in range(len(subjects)))


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_subsets_match_plaintext(stack: Stack, raw: RawData, data: st.DataObject) -> None:
    subjects = data.draw(st.lists(st.sampled_from(raw.ordered), min_size=1, max_size=300,
                                  unique=True))
    result = stack.score(subjects)
    want = plaintext(raw, model_of(stack), subjects)
    assert max(abs(g - w) for g, w in zip(result.scores, want, strict=True)) < 1e-2
    for partner, found in result.present.items():
        assert found == [s in raw.rows[partner] for s in subjects]


def test_full_agreement_limit_of_subjects(stack: Stack, raw: RawData) -> None:
    subjects = raw.ordered[:2000]  # every generated person, one ciphertext per input
    result = stack.score(subjects)
    want = plaintext(raw, model_of(stack), subjects)
    assert max(abs(g - w) for g, w in zip(result.scores, want, strict=True)) < 1e-2
    missing = [i for i, s in enumerate(subjects) if not result.complete(i)]
    assert missing == [i for i, s in enumerate(subjects) if s not in raw.in_all]


def test_allowed_score_is_audited_with_pseudonyms_only(stack: Stack, raw: RawData) -> None:
    subjects = raw.in_all[10:13]
    result = stack.score(subjects)
    entry = next(e for e in stack.audit() if e.request_id == result.request_id)
    assert (entry.kind, entry.decision, entry.subject_count) == ("compute", "allow", 3)
    assert entry.purpose == "loan-risk-scoring"
    assert "hpf-loan-risk v1" in entry.reason
    assert set(entry.released) == {("bank", "income_avg_12m", "encrypted"),
                                   ("social-security", "contribution_months", "encrypted"),
                                   ("education", "degree_level", "encrypted")}
    key = load_secret(stack.cfg.audit_pseudonym_key)
    assert entry.subject_pseudonyms == tuple(subject_pseudonym(key, s) for s in subjects)
    assert {a.id for a in entry.agreements} == {"hpf-risk-bank", "hpf-risk-ss", "hpf-risk-edu"}
    assert result.receipt.leaf_index >= 0 and result.receipt.entry
