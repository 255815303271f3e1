"""Every transform through the whole path: requester -> gateway -> connector -> SQLite -> back.

Each released value is checked against the raw row read straight from the partner's SQLite file:
what the transform must yield, and that the raw value itself never leaves.
"""

from __future__ import annotations

import itertools
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import grpc
import pytest
from pgw_it_harness import HOUSING, HPF, LOAN_SS, RawData, Stack, copy_policies, values_by_field

INCOME_EDGES = (3000, 5000, 8000, 12000, 20000)
HEX64 = re.compile(r"[0-9a-f]{64}")


def in_label(label: str, value: float) -> bool:
    """Whether ``value`` lies in a generalize label: ``"[lo, hi)"``, ``"<e"`` or ``">=e"``."""
    if label.startswith("<"):
        return value < float(label[1:])
    if label.startswith(">="):
        return value >= float(label[2:])
    m = re.fullmatch(r"\[(-?[\d.]+), (-?[\d.]+)\)", label)
    assert m, f"not a band label: {label!r}"
    return float(m[1]) <= value < float(m[2])


def band_width(label: str) -> float:
    m = re.fullmatch(r"\[(-?[\d.]+), (-?[\d.]+)\)", label)
    assert m, f"not a band label: {label!r}"
    return float(m[2]) - float(m[1])


def mixed_ss_subjects(raw: RawData, n: int = 40) -> list[str]:
    """Social-security people covering both sides of every loan predicate."""
    ss = raw.rows["social-security"]
    people = [i for i in raw.ordered if i in ss]
    buckets = {
        "few_months": [i for i in people if ss[i]["contribution_months"] < 12],
        "many_months": [i for i in people if ss[i]["contribution_months"] >= 12],
        "not_active": [i for i in people if ss[i]["insured_status"] != "active"],
        "short_run": [i for i in people if ss[i]["continuous_months"] < 6],
    }
    for name, ids in buckets.items():
        assert ids, f"synthetic data has no {name} person; enlarge PEOPLE"
    chosen: list[str] = []
    for ids in buckets.values():
        chosen.extend(i for i in ids[:5] if i not in chosen)
    chosen.extend(i for i in people if i not in chosen)
    return chosen[:n]


def test_plain_degree_and_year_equal_the_raw_rows(stack: Stack, raw: RawData) -> None:
    ids = raw.in_all[:20]
    response = stack.query("loan-eligibility", ids,
                           {"education": ["highest_degree", "graduation_year"]})
    assert [r.subject_index for r in response.results] == list(range(len(ids)))
    for person, result in zip(ids, response.results, strict=True):
        row = raw.row("education", person)
        got = values_by_field(result)
        assert got == {("education", "highest_degree"): row["highest_degree"],
                       ("education", "graduation_year"): row["graduation_year"]}
        assert {v.transform for v in result.values} == {"plain"}
        assert list(result.not_found) == []
    assert [(a.id, a.version) for a in response.agreements] == [("hpf-loan-edu", 1)]


def test_predicates_equal_the_raw_comparisons(stack: Stack, raw: RawData) -> None:
    ids = mixed_ss_subjects(raw)
    response = stack.query("loan-eligibility", ids,
                           {"social-security": ["contribution_months", "insured_status",
                                                "continuous_months"]})
    seen: dict[str, set[bool]] = defaultdict(set)
    for person, result in zip(ids, response.results, strict=True):
        row = raw.row("social-security", person)
        got = values_by_field(result)
        want = {("social-security", "contribution_months"): row["contribution_months"] >= 12,
                ("social-security", "insured_status"): row["insured_status"] == "active",
                ("social-security", "continuous_months"): row["continuous_months"] >= 6}
        assert got == want, person
        for v in result.values:
            assert v.transform == "predicate"
            assert v.value.WhichOneof("kind") == "bool_value"
            seen[v.field].add(v.value.bool_value)
    # both outcomes really occurred, so a constant answer could not pass
    assert all(outcomes == {True, False} for outcomes in seen.values()), seen


def test_pseudonym_employer_code_links_within_the_agreement_only(stack: Stack,
                                                                 raw: RawData) -> None:
    ss = raw.rows["social-security"]
    by_employer: dict[str, list[str]] = defaultdict(list)
    for person in raw.ordered:
        if person in ss:
            by_employer[ss[person]["employer_code"]].append(person)
    shared = next(ids for ids in by_employer.values() if len(ids) >= 2)
    other = next(ids[0] for code, ids in by_employer.items()
                 if code != ss[shared[0]]["employer_code"])
    ids = [shared[0], shared[1], other]
    response = stack.query("loan-eligibility", ids, {"social-security": ["employer_code"]})
    pseudonyms = [values_by_field(r)[("social-security", "employer_code")]
                  for r in response.results]
    for person, p in zip(ids, pseudonyms, strict=True):
        assert HEX64.fullmatch(p), p
        assert p != ss[person]["employer_code"]
        assert ss[person]["employer_code"] not in p
    assert pseudonyms[0] == pseudonyms[1]
    assert pseudonyms[0] != pseudonyms[2]
    again = stack.query("loan-eligibility", ids[:1], {"social-security": ["employer_code"]})
    assert values_by_field(again.results[0])[("social-security", "employer_code")] == \
        pseudonyms[0]
    blob = response.SerializeToString()
    for person in ids:
        assert ss[person]["employer_code"].encode() not in blob


def test_generalize_bank_bands_contain_the_raw_values(stack: Stack, raw: RawData) -> None:
    ids = raw.in_all[:40]
    response = stack.query("loan-eligibility", ids,
                           {"bank": ["income_avg_12m", "outstanding_loans", "overdue_flag"]})
    allowed_income = ({f"<{INCOME_EDGES[0]}", f">={INCOME_EDGES[-1]}"}
                      | {f"[{a}, {b})" for a, b in itertools.pairwise(INCOME_EDGES)})
    labels = set()
    blob = response.SerializeToString()
    for person, result in zip(ids, response.results, strict=True):
        row = raw.row("bank", person)
        got = values_by_field(result)
        income = got[("bank", "income_avg_12m")]
        assert income in allowed_income and in_label(income, row["income_avg_12m"]), \
            (income, row["income_avg_12m"])
        loans = got[("bank", "outstanding_loans")]
        assert band_width(loans) == 50000 and in_label(loans, row["outstanding_loans"])
        assert got[("bank", "overdue_flag")] is bool(row["overdue_flag"])
        labels.add(income)
        for secret in (row["card_number"], repr(row["income_avg_12m"])):
            assert secret.encode() not in blob
    assert len(labels) >= 2, "all incomes in one band: the check would be weak"


def test_generalize_district_and_base_for_housing_statistics(stack: Stack,
                                                             raw: RawData) -> None:
    ids = [i for i in raw.ordered if i in raw.rows["social-security"]][:30]
    token = stack.token(org=HOUSING)
    response = stack.query("statistics", ids,
                           {"social-security": ["district_code", "contribution_base"]},
                           token=token)
    for person, result in zip(ids, response.results, strict=True):
        row = raw.row("social-security", person)
        got = values_by_field(result)
        district = got[("social-security", "district_code")]
        assert district == row["district_code"][:4] and district != row["district_code"]
        base = got[("social-security", "contribution_base")]
        assert band_width(base) == 2000 and in_label(base, row["contribution_base"])
    assert [a.id for a in response.agreements] == ["housing-bureau-stats-ss"]


def test_mask_name_under_withdrawal_review(stack: Stack, raw: RawData) -> None:
    ss = raw.rows["social-security"]
    ids = [i for i in raw.ordered if i in ss][:20]
    response = stack.query("withdrawal-review", ids,
                           {"social-security": ["name", "insured_status",
                                                "last_contribution_month",
                                                "unemployment_benefit"]})
    blob = response.SerializeToString()
    for person, result in zip(ids, response.results, strict=True):
        row = ss[person]
        got = values_by_field(result)
        name, masked = row["name"], got[("social-security", "name")]
        assert len(masked) == len(name)
        assert masked != name
        if len(name) > 1:
            assert masked == name[0] + "*" * (len(name) - 1)
        else:
            assert masked == "*"
        assert name.encode() not in blob
        assert got[("social-security", "insured_status")] == row["insured_status"]
        assert got[("social-security", "last_contribution_month")] == \
            row["last_contribution_month"]
        assert got[("social-security", "unemployment_benefit")] is \
            bool(row["unemployment_benefit"])


def test_whole_loan_request_across_three_partners(stack: Stack, raw: RawData) -> None:
    """The demo's request: values merged per subject, a receipt, a subject the bank lacks."""
    lacking = next(i for i in raw.not_in("bank") if i in raw.rows["education"])
    ids = [*raw.in_all[:4], lacking]
    response = stack.query("loan-eligibility", ids, {
        "social-security": LOAN_SS, "education": ["highest_degree"],
        "bank": ["income_avg_12m", "overdue_flag"]})
    assert len(response.results) == 5
    for result in response.results[:4]:
        assert {v.partner for v in result.values} == {"social-security", "education", "bank"}
        assert len(result.values) == len(LOAN_SS) + 3
        assert list(result.not_found) == []
    assert list(response.results[4].not_found) == ["bank"]
    assert {v.partner for v in response.results[4].values} == {"social-security", "education"}
    assert sorted(a.id for a in response.agreements) == ["hpf-loan-bank", "hpf-loan-edu",
                                                         "hpf-loan-ss"]
    assert response.receipt.tree_size >= response.receipt.leaf_index + 1
    assert response.receipt.entry and response.receipt.checkpoint


SUPPRESS_AGREEMENT = """\
# Test only: the same purpose released with one field suppressed.
id: test-suppress-ss
version: 1
requester_org: hpf-changzhou
roles: [requester]
purpose: audit-review
partner: social-security
description: Test agreement; the name is listed but suppressed, the employer pseudonymised.
legal_basis: Integration test of the suppress transform.
valid_from: 2026-01-01
valid_until: 2027-12-31
fields:
  employer_code: {transform: pseudonym}
  insured_status: {transform: plain}
  name: {transform: suppress}
limits:
  max_subjects_per_request: 50
  requests_per_minute: 60
"""


@pytest.fixture
def suppress_stack(make_stack: Any, base_cfg: Any, tmp_path: Path) -> Stack:
    policies = copy_policies(base_cfg.policies, tmp_path / "policies",
                             {"test-suppress-ss.yaml": SUPPRESS_AGREEMENT})
    return make_stack(policies=policies)


def test_suppress_releases_nothing_for_the_field(suppress_stack: Stack, raw: RawData) -> None:
    ss = raw.rows["social-security"]
    ids = [i for i in raw.ordered if i in ss][:10]
    response = suppress_stack.query("audit-review", ids,
                                    {"social-security": ["insured_status", "name"]})
    blob = response.SerializeToString()
    for person, result in zip(ids, response.results, strict=True):
        by_field = {v.field: v for v in result.values}
        assert by_field["name"].transform == "suppress"
        assert not by_field["name"].HasField("value")
        assert by_field["insured_status"].value.string_value == ss[person]["insured_status"]
        assert ss[person]["name"].encode() not in blob
    assert [a.id for a in response.agreements] == ["test-suppress-ss"]


def test_shipped_stack_has_no_suppress_agreement_for_that_purpose(stack: Stack,
                                                                  raw: RawData) -> None:
    """The same request on the shipped agreements is refused: audit-review has none."""
    with pytest.raises(grpc.RpcError) as info:
        stack.query("audit-review", raw.in_all[:1], {"social-security": ["name"]},
                    token=stack.token(org=HPF))
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_pseudonyms_do_not_link_across_agreements(suppress_stack: Stack,
                                                  raw: RawData) -> None:
    """One connector, one secret, one person: another agreement gives another pseudonym."""
    person = next(i for i in raw.ordered if i in raw.rows["social-security"])
    field = ("social-security", "employer_code")
    loan = values_by_field(suppress_stack.query("loan-eligibility", [person], {
        "social-security": ["employer_code"]}).results[0])[field]
    fraud = values_by_field(suppress_stack.query("audit-review", [person], {
        "social-security": ["employer_code"]}).results[0])[field]
    assert HEX64.fullmatch(loan) and HEX64.fullmatch(fraud)
    assert loan != fraud
