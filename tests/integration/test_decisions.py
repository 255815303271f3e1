"""Deny by default, all or nothing: refusals at the real server, with the refused fields listed.

Every refusal is PERMISSION_DENIED with an ErrorInfo (``FIELDS_NOT_GRANTED``) naming every
refused field, releases nothing, and is audited as ``deny`` with nothing released.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc
import pytest
from pgw_it_harness import HOUSING, HPF, LOAN_SS, RawData, Selections, Stack, code_of

from gateway.pb.pgw.v1 import gateway_pb2
from gateway.status import refused_fields

LOAN_ALL = {"social-security": LOAN_SS, "education": ["highest_degree"],
            "bank": ["income_avg_12m", "overdue_flag"]}


def refuse(stack: Stack, purpose: str, subjects: Sequence[str], selections: Selections, *,
           token: str) -> grpc.RpcError:
    """Query that must be refused; check the one deny entry it adds, return the error."""
    before = stack.audit()
    err = code_of(lambda: stack.query(purpose, subjects, selections, token=token))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED, err.details()
    after = stack.audit()
    assert len(after) == len(before) + 1
    entry = after[-1]
    assert entry.kind == "query" and entry.decision == "deny"
    assert entry.released == () and entry.response_digest == ""
    assert entry.purpose == purpose and entry.subject_count == len(subjects)
    return err


def test_org_without_any_agreement_is_denied(stack: Stack, raw: RawData) -> None:
    token = stack.token(org="nanjing-tax-bureau")
    err = refuse(stack, "loan-eligibility", raw.in_all[:2],
                 {"education": ["highest_degree"], "bank": ["overdue_flag"]}, token=token)
    assert sorted(refused_fields(err)) == ["bank.overdue_flag", "education.highest_degree"]
    assert stack.audit()[-1].requester_org == "nanjing-tax-bureau"


def test_catalogue_purpose_without_agreement_is_denied(stack: Stack, raw: RawData) -> None:
    err = refuse(stack, "audit-review", raw.in_all[:1],
                 {"social-security": ["contribution_months"]}, token=stack.token())
    assert refused_fields(err) == ["social-security.contribution_months"]
    explain = stack.explain("audit-review", {"social-security": ["contribution_months"]})
    assert explain.verdict == gateway_pb2.VERDICT_DENY


def test_one_ungranted_field_refuses_the_whole_request_listing_all(stack: Stack,
                                                                   raw: RawData) -> None:
    selections = {
        "social-security": [*LOAN_SS, "name"],
        "education": ["highest_degree", "certificate_number"],
        "bank": ["income_avg_12m", "card_number", "payroll_inflows_12m"],
    }
    err = refuse(stack, "loan-eligibility", raw.in_all[:3], selections, token=stack.token())
    assert sorted(refused_fields(err)) == ["bank.card_number", "bank.payroll_inflows_12m",
                                           "education.certificate_number",
                                           "social-security.name"]
    # nothing at all came back: no partial release in the status either
    assert err.trailing_metadata() is not None
    for person in raw.in_all[:3]:
        for value in (raw.row("bank", person)["card_number"], raw.row("social-security",
                                                                    person)["name"]):
            assert value not in err.details()
    entry = stack.audit()[-1]
    assert sorted(entry.partners) == ["bank", "education", "social-security"]
    assert sorted(a.id for a in entry.agreements) == ["hpf-loan-bank", "hpf-loan-edu",
                                                      "hpf-loan-ss"]


def test_explain_gives_the_same_decision_as_query(stack: Stack) -> None:
    explain = stack.explain("loan-eligibility", {"bank": ["income_avg_12m", "card_number"]})
    assert explain.verdict == gateway_pb2.VERDICT_DENY
    verdicts = {(f.partner, f.field): f.verdict for f in explain.fields}
    assert verdicts == {("bank", "income_avg_12m"): gateway_pb2.VERDICT_ALLOW,
                        ("bank", "card_number"): gateway_pb2.VERDICT_DENY}
    ok = stack.explain("loan-eligibility", LOAN_ALL, subject_count=5)
    assert ok.verdict == gateway_pb2.VERDICT_ALLOW
    assert {f.verdict for f in ok.fields} == {gateway_pb2.VERDICT_ALLOW}


def test_wrong_purpose_for_a_granted_field_is_denied(stack: Stack, raw: RawData) -> None:
    err = refuse(stack, "withdrawal-review", raw.in_all[:1], {"bank": ["income_avg_12m"]},
                 token=stack.token())
    assert refused_fields(err) == ["bank.income_avg_12m"]
    # and the other way round: the withdrawal-only name mask is not a loan field
    err = refuse(stack, "loan-eligibility", raw.in_all[:1], {"social-security": ["name"]},
                 token=stack.token())
    assert refused_fields(err) == ["social-security.name"]


@pytest.mark.parametrize("role", ["auditor", "integrator", "policy-admin"])
def test_wrong_role_is_denied(stack: Stack, raw: RawData, role: str) -> None:
    token = stack.token(roles=[role])
    err = refuse(stack, "loan-eligibility", raw.in_all[:1], LOAN_ALL, token=token)
    assert sorted(refused_fields(err)) == sorted(
        f"{p}.{f}" for p, fields in LOAN_ALL.items() for f in fields)
    assert stack.audit()[-1].role == role


def test_another_orgs_agreement_does_not_apply(stack: Stack, raw: RawData) -> None:
    """housing-bureau may have district bands for statistics, not HPF's loan booleans..."""
    err = refuse(stack, "loan-eligibility", raw.in_all[:1],
                 {"social-security": ["contribution_months"]}, token=stack.token(org=HOUSING))
    assert refused_fields(err) == ["social-security.contribution_months"]
    # ...and HPF may not use housing-bureau's statistics agreement
    err = refuse(stack, "statistics", raw.in_all[:1], {"social-security": ["district_code"]},
                 token=stack.token(org=HPF))
    assert refused_fields(err) == ["social-security.district_code"]


def test_more_subjects_than_the_agreement_allows_is_denied(stack: Stack, raw: RawData) -> None:
    ids = [i for i in raw.ordered if i in raw.rows["social-security"]][:21]
    err = refuse(stack, "withdrawal-review", ids, {"social-security": ["insured_status"]},
                 token=stack.token())
    assert "max_subjects_per_request" in err.details()
    assert stack.query("withdrawal-review", ids[:20],
                       {"social-security": ["insured_status"]}).results
