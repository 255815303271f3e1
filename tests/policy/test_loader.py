"""Loading and linting the policy directory: shipped files load, broken copies name
the file, the rule and the reason."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import gateway.policy as policy
from gateway.errors import ConfigError
from gateway.policy import PolicyLoadError, default_catalogues, lint_policies, load_policies
from gateway.policy._model import Agreement

SHIPPED = Path(__file__).resolve().parents[2] / "policies"

Doc = dict[str, Any]


def test_public_surface() -> None:
    assert policy.__all__ == sorted(policy.__all__)
    assert set(policy.__all__) == {
        "AdminAudit", "AdminEvent", "AgreementRecord", "AgreementRegistry", "ApprovedModel",
        "ROLES", "Agreement", "FieldGrant", "Limits", "ModelInput", "PartnerDecision",
        "PolicyLoadError", "PolicyProblem", "PolicySet", "Purpose", "RequestDecision",
        "check_spec_against", "choose_agreement", "default_catalogues", "lint_policies",
        "load_models",
        "load_policies"}


def test_shipped_policies_load_and_lint_clean() -> None:
    assert lint_policies(SHIPPED, default_catalogues()) == []
    policies = load_policies(SHIPPED, default_catalogues())
    files = sorted(p.stem for p in (SHIPPED / "agreements").glob("*.yaml"))
    assert sorted(a.id for a in policies.agreements) == files
    assert set(policies.purposes) == {"loan-eligibility", "loan-risk-scoring",
                                      "withdrawal-review", "fraud-detection", "statistics",
                                      "audit-review"}
    for agreement in policies.agreements:
        assert agreement.source.endswith(f"{agreement.id}.yaml")
        assert len(agreement.content_hash) == 64


def test_hpf_never_gets_card_numbers_payroll_or_raw_income() -> None:
    policies = load_policies(SHIPPED)
    for agreement in policies.agreements:
        if agreement.requester_org != "hpf-changzhou":
            continue
        granted = {g.field: g for g in agreement.fields}
        assert "card_number" not in granted and "payroll_inflows_12m" not in granted
        if "income_avg_12m" in granted:
            # raw income never: a band, a predicate, or a ciphertext for an approved model
            assert granted["income_avg_12m"].transform in ("generalize", "predicate",
                                                           "encrypted")


def test_default_catalogues() -> None:
    assert sorted(default_catalogues()) == ["bank", "education", "real-estate",
                                            "social-security"]


def _mutate(doc: Doc, path: str, value: Any) -> Doc:
    """Set (or with ``...`` delete) a dotted key in a copy of ``doc``."""
    out: Doc = {k: (dict(v) if isinstance(v, dict) else v) for k, v in doc.items()}
    *parents, last = path.split(".")
    node = out
    for part in parents:
        node[part] = dict(node[part]) if isinstance(node[part], dict) else node[part]
        node = node[part]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return out


@pytest.mark.parametrize(("path", "value", "rule"), [
    ("fields.income_avg_12m", {"transform": "generalize", "band": -1},
     "fields.income_avg_12m.band"),
    ("fields.income_avg_12m", {"transform": "mask"}, "fields.income_avg_12m.transform"),
    ("fields.income_avg_12m", {"transform": "blur"}, "fields.income_avg_12m.transform"),
    ("fields.income_avg_12m", {"band": 10}, "fields.income_avg_12m.transform"),
    ("fields.income_avg_12m", {"transform": "generalize", "edge": [1]},
     "fields.income_avg_12m.edge"),
    ("fields.card_numbr", {"transform": "plain"}, "fields.card_numbr"),
    ("fields", {}, "fields"),
    ("purpose", "loan-elegibility", "purpose"),
    ("partner", "tax-bureau", "partner"),
    ("limts", {"max_subjects_per_request": 1}, "limts"),
    ("limits.burst", 5, "limits.burst"),
    ("limits.max_subjects_per_request", 0, "limits.max_subjects_per_request"),
    ("limits.requests_per_minute", ..., "limits.requests_per_minute"),
    ("valid_until", "2025-01-01", "valid_until"),
    ("valid_from", "2026-02-30", "valid_from"),
    ("valid_until", ..., "valid_until"),
    ("version", 0, "version"),
    ("version", True, "version"),
    ("roles", ["requester", "superuser"], "roles"),
    ("roles", [], "roles"),
    ("legal_basis", " ", "legal_basis"),
    ("id", "HPF Loan", "id"),
])
def test_broken_agreement_names_file_and_rule(
        agreement_doc: Callable[[str], Doc], write_agreement: Callable[[str, Any], Path],
        policy_dir: Path, path: str, value: Any, rule: str) -> None:
    broken = write_agreement("hpf-loan-bank", _mutate(agreement_doc("hpf-loan-bank"), path, value))
    with pytest.raises(PolicyLoadError) as info:
        load_policies(policy_dir, default_catalogues())
    err = info.value
    assert isinstance(err, ConfigError)
    assert (err.file, err.rule) == (str(broken), rule)
    assert str(err) == f"{broken}: {rule}: {err.reason}" and err.reason
    assert [(p.file, p.rule) for p in lint_policies(policy_dir, default_catalogues())] == [
        (str(broken), rule)]


def test_unknown_purpose_in_catalogue(policy_dir: Path) -> None:
    (policy_dir / "purposes.yaml").write_text(
        "purposes:\n  statistics:\n    description: x\n", encoding="utf-8")
    rules = {(Path(p.file).name, p.rule) for p in lint_policies(policy_dir)}
    assert ("purposes.yaml", "purposes.statistics") in rules
    assert ("hpf-loan-ss.yaml", "purpose") in rules


def test_duplicate_yaml_key_is_an_error(policy_dir: Path,
                                        write_agreement: Callable[[str, Any], Path]) -> None:
    text = (SHIPPED / "agreements" / "hpf-loan-edu.yaml").read_text("utf-8")
    text = text.replace("  graduation_year: {transform: plain}\n",
                        "  graduation_year: {transform: plain}\n"
                        "  graduation_year: {transform: suppress}\n")
    path = write_agreement("hpf-loan-edu", text)
    problems = lint_policies(policy_dir)
    assert [(p.file, p.rule) for p in problems] == [(str(path), "yaml")]
    assert "duplicate key 'graduation_year'" in problems[0].reason


def test_lint_collects_every_problem(agreement_doc: Callable[[str], Doc],
                                     write_agreement: Callable[[str, Any], Path],
                                     policy_dir: Path) -> None:
    doc = _mutate(agreement_doc("hpf-loan-ss"), "purpose", "marketing")
    doc = _mutate(doc, "fields.contribution_months", {"transform": "predicate", "op": ">="})
    doc = _mutate(doc, "colour", "blue")
    write_agreement("hpf-loan-ss", doc)
    write_agreement("broken", "id: [unclosed\n")
    (policy_dir / "agreements" / "notes.txt").write_text("x", encoding="utf-8")
    rules = sorted((Path(p.file).name, p.rule) for p in lint_policies(policy_dir))
    assert rules == [("broken.yaml", "yaml"), ("hpf-loan-ss.yaml", "colour"),
                     ("hpf-loan-ss.yaml", "fields.contribution_months.value"),
                     ("hpf-loan-ss.yaml", "purpose"), ("notes.txt", "file")]


def test_empty_and_non_mapping_documents(write_agreement: Callable[[str, Any], Path],
                                         policy_dir: Path) -> None:
    write_agreement("empty", "")
    write_agreement("list", "- id: x\n")
    rules = sorted((Path(p.file).name, p.rule) for p in lint_policies(policy_dir))
    assert rules == [("empty.yaml", "document"), ("list.yaml", "document")]


def test_duplicate_id(agreement_doc: Callable[[str], Doc],
                      write_agreement: Callable[[str, Any], Path], policy_dir: Path) -> None:
    doc = _mutate(agreement_doc("hpf-loan-edu"), "purpose", "statistics")
    path = write_agreement("zz-copy", doc)
    with pytest.raises(PolicyLoadError) as info:
        load_policies(policy_dir)
    assert (info.value.file, info.value.rule) == (str(path), "id")
    assert "hpf-loan-edu.yaml" in info.value.reason


def test_overlap(agreement_doc: Callable[[str], Doc],
                 write_agreement: Callable[[str, Any], Path], policy_dir: Path) -> None:
    doc = _mutate(agreement_doc("hpf-loan-edu"), "id", "hpf-loan-edu-2")
    doc = _mutate(doc, "roles", ["requester", "auditor"])
    doc = _mutate(doc, "valid_from", "2027-06-01")
    doc = _mutate(doc, "valid_until", "2028-12-31")
    path = write_agreement("zz-overlap", doc)
    with pytest.raises(PolicyLoadError) as info:
        load_policies(policy_dir)
    assert (info.value.file, info.value.rule) == (str(path), "overlap")
    assert "hpf-loan-edu v1" in info.value.reason and "2027-06-01" in info.value.reason


def test_no_overlap_when_periods_or_roles_differ(
        agreement_doc: Callable[[str], Doc], write_agreement: Callable[[str, Any], Path],
        policy_dir: Path) -> None:
    later = _mutate(agreement_doc("hpf-loan-edu"), "id", "hpf-loan-edu-2028")
    later = _mutate(_mutate(later, "valid_from", "2028-01-01"), "valid_until", "2028-12-31")
    auditor = _mutate(agreement_doc("hpf-loan-edu"), "id", "hpf-loan-edu-audit")
    auditor = _mutate(auditor, "roles", ["auditor"])
    write_agreement("later", later)
    write_agreement("auditor", auditor)
    assert lint_policies(policy_dir) == []
    shipped = len(list((SHIPPED / "agreements").glob("*.yaml")))
    assert len(load_policies(policy_dir).agreements) == shipped + 2


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(PolicyLoadError) as info:
        load_policies(tmp_path / "nope")
    assert info.value.rule == "directory"


def _load_one(policy_dir: Path, write: Callable[[str, Any], Path], stem: str,
              doc: Any) -> Agreement:
    write(stem, doc)
    return load_policies(policy_dir).agreement(
        doc["id"] if isinstance(doc, dict) else stem)


def test_content_hash_ignores_yaml_layout_and_path(
        write_agreement: Callable[[str, Any], Path], policy_dir: Path) -> None:
    original = load_policies(SHIPPED).agreement("hpf-loan-bank")
    reformatted = """
# same agreement, different layout, order, quoting and file name
limits: {subjects_per_day: 20000, requests_per_minute: 6000, max_subjects_per_request: 50}
fields:
  outstanding_loans:
    band: 50000.0
    transform: "generalize"
  overdue_flag: {transform: plain}
  income_avg_12m:
    transform: generalize
    edges:
      - 3000
      - 5000
      - 8000
      - 12000
      - 20000
valid_until: "2027-12-31"
valid_from: 2026-01-01
partner: 'bank'
purpose: loan-eligibility
roles:
  - requester
requester_org: hpf-changzhou
version: 1
id: hpf-loan-bank
description: Income band, overdue flag and outstanding loans in 50,000 CNY bands, to assess
  repayment capacity without exact amounts.
legal_basis: "PIPL art. 13(1) (applicant's written consent on the loan application) and art. 6
  (minimum necessary); Regulations on the Administration of Housing Provident Fund art. 26;
  Changzhou HPF Management Centre personal housing loan rules, repayment-capacity section."
"""
    (policy_dir / "agreements" / "hpf-loan-bank.yaml").unlink()
    write_agreement("renamed", reformatted)
    copy = load_policies(policy_dir).agreement("hpf-loan-bank")
    assert copy.source != original.source
    assert copy == original
    assert copy.content_hash == original.content_hash


@pytest.mark.parametrize(("path", "value"), [
    ("version", 2),
    ("requester_org", "hpf-suzhou"),
    ("roles", ["requester", "auditor"]),
    ("purpose", "fraud-detection"),
    ("legal_basis", "PIPL art. 13(1)."),
    ("valid_from", "2026-01-02"),
    ("valid_until", "2028-01-01"),
    ("description", "changed"),
    ("fields.income_avg_12m", {"transform": "generalize", "edges": [3000, 6000]}),
    ("fields.outstanding_loans", {"transform": "generalize", "band": 40000}),
    ("fields.overdue_flag", {"transform": "suppress"}),
    ("fields.overdue_flag", ...),
    ("limits.max_subjects_per_request", 51),
    ("limits.requests_per_minute", 121),
])
def test_content_hash_changes_with_meaning(
        agreement_doc: Callable[[str], Doc], write_agreement: Callable[[str, Any], Path],
        policy_dir: Path, path: str, value: Any) -> None:
    original = load_policies(SHIPPED).agreement("hpf-loan-bank")
    changed = _load_one(policy_dir, write_agreement, "hpf-loan-bank",
                        _mutate(agreement_doc("hpf-loan-bank"), path, value))
    assert changed.content_hash != original.content_hash
