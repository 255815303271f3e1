"""The policy decision: deny by default, all or nothing, reasons for every field; and the
connector-side check of a release spec against its own agreement copy."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from gateway.errors import NotFound, PermissionDenied
from gateway.policy import PolicySet, check_spec_against, load_policies

SHIPPED = Path(__file__).resolve().parents[2] / "policies"
TODAY = date(2026, 11, 25)
HPF = {"org": "hpf-changzhou", "roles": ["requester"]}
LOAN_SS = ["contribution_months", "insured_status", "continuous_months", "employer_code"]


@pytest.fixture(scope="module")
def policies() -> PolicySet:
    return load_policies(SHIPPED)


def decide(policies: PolicySet, selections: dict[str, list[str]], *, purpose: str =
           "loan-eligibility", subject_count: int = 1, today: date = TODAY,
           **who: Any):
    principal = {**HPF, **who}
    return policies.decide(org=principal["org"], roles=principal["roles"], purpose=purpose,
                           selections=selections, subject_count=subject_count, today=today)


def test_loan_happy_path(policies: PolicySet) -> None:
    d = decide(policies, {"social-security": LOAN_SS, "education": ["highest_degree"],
                          "bank": ["income_avg_12m", "overdue_flag"]}, subject_count=50)
    assert d.allowed and d.refused_fields == ()
    d.raise_if_denied()
    assert "hpf-loan-ss v1" in d.reason and "hpf-loan-bank v1" in d.reason
    ss = d.partners[0]
    assert ss.allowed and ss.agreement is not None and ss.agreement.id == "hpf-loan-ss"
    assert [g.field for g in ss.granted] == LOAN_SS
    assert dict(ss.field_reasons)["contribution_months"] == (
        "granted as predicate contribution_months >= 12 by hpf-loan-ss v1")


def test_unlisted_field_refuses_the_whole_request(policies: PolicySet) -> None:
    d = decide(policies, {"social-security": ["contribution_months", "contribution_base"],
                          "bank": ["income_avg_12m", "card_number", "payroll_inflows_12m"]})
    assert not d.allowed
    assert d.refused_fields == ("social-security.contribution_base", "bank.card_number",
                                "bank.payroll_inflows_12m")
    for name in d.refused_fields:
        assert name in d.reason
    with pytest.raises(PermissionDenied) as info:
        d.raise_if_denied()
    assert info.value.refused_fields == list(d.refused_fields)
    reasons = dict(d.partners[1].field_reasons)
    assert reasons["card_number"] == "not granted by hpf-loan-bank v1"
    assert reasons["income_avg_12m"].startswith("granted as generalize")


def test_field_not_in_catalogue(policies: PolicySet) -> None:
    d = decide(policies, {"bank": ["shoe_size"]})
    assert not d.allowed and d.refused_fields == ("bank.shoe_size",)
    assert dict(d.partners[0].refused)["shoe_size"] == "not in the bank catalogue"


def test_multi_partner_all_or_nothing(policies: PolicySet) -> None:
    d = decide(policies, {"social-security": ["contribution_months"],
                          "education": ["certificate_number"]})
    assert not d.allowed
    assert d.partners[0].allowed and not d.partners[1].allowed
    assert d.refused_fields == ("education.certificate_number",)


def test_wrong_purpose(policies: PolicySet) -> None:
    d = decide(policies, {"bank": ["overdue_flag"]}, purpose="withdrawal-review")
    assert not d.allowed
    assert "no agreement for purpose withdrawal-review" in d.reason
    d = decide(policies, {"bank": ["overdue_flag"]}, purpose="marketing")
    assert not d.allowed and d.reason.startswith("request refused: unknown purpose 'marketing'")


def test_withdrawal_review_does_not_open_loan_fields(policies: PolicySet) -> None:
    ok = decide(policies, {"social-security": ["insured_status", "name"]},
                purpose="withdrawal-review")
    assert ok.allowed
    d = decide(policies, {"social-security": ["contribution_months"]},
               purpose="withdrawal-review")
    assert d.refused_fields == ("social-security.contribution_months",)


def test_wrong_role(policies: PolicySet) -> None:
    d = decide(policies, {"bank": ["overdue_flag"]}, roles=["auditor", "integrator"])
    assert not d.allowed and d.reason.startswith("request refused: role not permitted")
    assert "requester" in d.reason and "auditor, integrator" in d.reason
    assert "role not permitted" in decide(policies, {"bank": ["overdue_flag"]}, roles=[]).reason


def test_wrong_org(policies: PolicySet) -> None:
    d = decide(policies, {"bank": ["overdue_flag"]}, org="housing-bureau")
    assert not d.allowed and "no agreement for purpose loan-eligibility" in d.reason


def test_expired_and_not_yet_valid(policies: PolicySet) -> None:
    d = decide(policies, {"bank": ["overdue_flag"]}, today=date(2028, 1, 1))
    assert not d.allowed and "expired: hpf-loan-bank v1 ended 2027-12-31" in d.reason
    d = decide(policies, {"bank": ["overdue_flag"]}, today=date(2025, 12, 31))
    assert not d.allowed and "not yet valid: hpf-loan-bank v1 takes effect 2026-01-01" in d.reason
    assert decide(policies, {"bank": ["overdue_flag"]}, today=date(2027, 12, 31)).allowed
    assert decide(policies, {"bank": ["overdue_flag"]}, today=date(2026, 1, 1)).allowed


def test_too_many_subjects(policies: PolicySet) -> None:
    d = decide(policies, {"social-security": ["contribution_months"]}, subject_count=51)
    assert not d.allowed and d.refused_fields == ()
    assert "limits.max_subjects_per_request 50" in d.reason
    with pytest.raises(ValueError, match="subject_count"):
        decide(policies, {"bank": ["overdue_flag"]}, subject_count=-1)


def test_unknown_partner_and_empty_requests(policies: PolicySet) -> None:
    d = decide(policies, {"tax-bureau": ["declared_income"]})
    assert not d.allowed and "unknown partner 'tax-bureau'" in d.reason
    assert not decide(policies, {}).allowed
    assert not decide(policies, {"bank": []}).allowed


def test_ambiguous_roles_are_refused(policies: PolicySet) -> None:
    base = policies.agreement("hpf-loan-edu")
    audit = dataclasses.replace(base, id="hpf-loan-edu-audit", roles=("auditor",))
    both = PolicySet(policies.purposes, (*policies.agreements, audit), policies.catalogues)
    d = decide(both, {"education": ["highest_degree"]}, roles=["requester", "auditor"])
    assert not d.allowed and "ambiguous" in d.reason
    assert decide(both, {"education": ["highest_degree"]}, roles=["auditor"]).allowed


def test_lookup_and_partner_copy(policies: PolicySet) -> None:
    assert policies.agreement("hpf-loan-ss").version == 1
    with pytest.raises(NotFound):
        policies.agreement("nope")
    ss = policies.for_partner("social-security")
    assert {a.partner for a in ss.agreements} == {"social-security"}
    assert sorted(a.id for a in ss.agreements) == [
        "housing-bureau-stats-ss", "hpf-fraud-ss", "hpf-loan-ss", "hpf-risk-ss",
        "hpf-stats-ss", "hpf-withdrawal-ss"]
    assert ss.purposes == policies.purposes
    assert not decide(ss, {"bank": ["overdue_flag"]}).allowed


# -- check_spec_against -------------------------------------------------------------------

def spec_of(policies: PolicySet, agreement_id: str) -> dict[str, tuple[str, Any]]:
    return {g.field: (g.transform, g.param_dict) for g in policies.agreement(agreement_id).fields}


def check(policies: PolicySet, fields: dict[str, tuple[str, Any]], **kw: Any) -> list[str]:
    args: dict[str, Any] = {"org": "hpf-changzhou", "purpose": "loan-eligibility",
                            "today": TODAY, **kw}
    return check_spec_against(policies.agreement("hpf-loan-bank"), fields=fields, **args)


def test_spec_within_agreement(policies: PolicySet) -> None:
    full = spec_of(policies, "hpf-loan-bank")
    a = policies.agreement("hpf-loan-bank")
    assert check(policies, full, content_hash=a.content_hash, subject_count=50) == []
    assert check(policies, {"overdue_flag": full["overdue_flag"]}) == []
    edges = {"income_avg_12m": ("generalize", {"edges": (3000, 5000, 8000, 12000, 20000)})}
    assert check(policies, edges) == []


Mutation = Callable[[dict[str, tuple[str, Any]]], dict[str, tuple[str, Any]]]


@pytest.mark.parametrize(("mutate", "kw", "expected"), [
    (lambda f: {**f, "card_number": ("plain", {})}, {}, "fields.card_number: not granted"),
    (lambda f: {**f, "income_avg_12m": ("plain", {})}, {}, "fields.income_avg_12m.transform"),
    (lambda f: {**f, "outstanding_loans": ("generalize", {"band": 1000})}, {},
     "fields.outstanding_loans.params"),
    (lambda f: {**f, "outstanding_loans": ("generalize", {})}, {},
     "fields.outstanding_loans.params"),
    (lambda f: f, {"org": "housing-bureau"}, "requester_org"),
    (lambda f: f, {"purpose": "statistics"}, "purpose"),
    (lambda f: f, {"today": date(2028, 1, 1)}, "not in force"),
    (lambda f: f, {"content_hash": "0" * 64}, "content_hash"),
    (lambda f: f, {"subject_count": 51}, "limits.max_subjects_per_request"),
])
def test_spec_wider_than_agreement(policies: PolicySet, mutate: Mutation,
                                   kw: dict[str, Any], expected: str) -> None:
    problems = check(policies, mutate(spec_of(policies, "hpf-loan-bank")), **kw)
    assert len(problems) == 1 and expected in problems[0]
