"""Budget keys in agreements (parse, lint, canonical form and content hash) and the
``[budgets]`` section of pgw.toml; the package's public surface."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

import gateway.budgets as budgets
from gateway.budgets import default_budget_dsn
from gateway.config import load_config
from gateway.errors import ConfigError
from gateway.policy import lint_policies, load_policies
from gateway.workdir import init_workdir, shipped_policies

#: hpf-withdrawal-ss sets no budget key: its hash is the one it had before budgets existed.
WITHDRAWAL_HASH = "9baf6a5538d516a243b283eaa3b05eecc2013962ef77dc4bdfddf3c1b801b920"


def test_public_surface() -> None:
    assert budgets.__all__ == sorted(budgets.__all__)
    assert set(budgets.__all__) == {
        "DAY", "MINUTE", "BudgetExhausted", "BudgetStore", "BudgetUnavailable", "Budgets",
        "Charge", "SqliteBudgetStore", "audit_decision", "budget_secret", "default_budget_dsn",
        "open_budget_store", "quota_violations"}


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(shipped_policies(), target)
    return target


def _write(policies: Path, stem: str, **limits: Any) -> Path:
    """Rewrite one agreement of the copy with ``limits`` merged in (``None`` removes a key)."""
    path = policies / "agreements" / f"{stem}.yaml"
    doc = yaml.safe_load(path.read_text("utf-8"))
    doc["limits"] = {k: v for k, v in {**doc["limits"], **limits}.items() if v is not None}
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def test_agreements_without_budget_keys_keep_their_content_hash() -> None:
    a = load_policies(shipped_policies()).agreement("hpf-withdrawal-ss")
    assert a.limits.subjects_per_day is None and "subjects_per_day" not in a.canonical()["limits"]
    assert a.content_hash == WITHDRAWAL_HASH


def test_budget_keys_parse_and_change_the_hash(tmp_path: Path) -> None:
    policies = _copy(tmp_path)
    before = load_policies(policies).agreement("hpf-withdrawal-ss")
    _write(policies, "hpf-withdrawal-ss", subjects_per_day=100, queries_per_subject_per_day=4)
    after = load_policies(policies).agreement("hpf-withdrawal-ss")
    assert (after.limits.subjects_per_day, after.limits.queries_per_subject_per_day,
            after.limits.queries_per_cohort_per_day) == (100, 4, None)
    assert after.canonical()["limits"] == {"max_subjects_per_request": 20,
                                           "requests_per_minute": 600, "subjects_per_day": 100,
                                           "queries_per_subject_per_day": 4}
    assert after.content_hash != before.content_hash


@pytest.mark.parametrize(("stem", "limits", "rule", "reason"), [
    ("hpf-loan-edu", {"subjects_per_day": 0}, "limits.subjects_per_day", "integer >= 1"),
    ("hpf-loan-edu", {"subjects_per_day": True}, "limits.subjects_per_day", "integer >= 1"),
    ("hpf-loan-edu", {"queries_per_day": 3}, "limits.queries_per_day", "unknown key"),
    ("hpf-loan-edu", {"subjects_per_day": 49}, "limits.subjects_per_day",
     "want >= max_subjects_per_request 50"),
    ("hpf-stats-ss", {"queries_per_subject_per_day": 3}, "limits.queries_per_subject_per_day",
     "no effect"),
    ("hpf-stats-ss", {"subjects_per_day": 3}, "limits.subjects_per_day", "no effect"),
    ("hpf-loan-ss", {"queries_per_cohort_per_day": 3}, "limits.queries_per_cohort_per_day",
     "no effect"),
    ("hpf-fraud-ss", {"queries_per_subject_per_day": 3}, "limits.queries_per_subject_per_day",
     "no effect"),
])
def test_lint_names_the_budget_rule(tmp_path: Path, stem: str, limits: dict[str, Any],
                                    rule: str, reason: str) -> None:
    policies = _copy(tmp_path)
    broken = _write(policies, stem, **limits)
    problems = [(p.file, p.rule, p.reason) for p in lint_policies(policies)]
    assert [(f, r) for f, r, _ in problems] == [(str(broken), rule)]
    assert reason in problems[0][2]


def test_a_join_agreement_may_budget_its_volume(tmp_path: Path) -> None:
    policies = _copy(tmp_path)
    _write(policies, "hpf-fraud-ss", max_subjects_per_request=100, subjects_per_day=150)
    assert load_policies(policies).agreement("hpf-fraud-ss").limits.subjects_per_day == 150


def test_shipped_agreements_carry_budgets() -> None:
    assert lint_policies(shipped_policies()) == []
    limits = {a.id: a.limits for a in load_policies(shipped_policies()).agreements}
    for aid in ("hpf-loan-ss", "hpf-loan-re"):
        assert limits[aid].queries_per_subject_per_day and limits[aid].subjects_per_day
    for aid in ("hpf-loan-edu", "hpf-loan-bank", "housing-bureau-stats-ss"):
        assert limits[aid].subjects_per_day
    assert limits["hpf-stats-ss"].queries_per_cohort_per_day


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cfg")
    init_workdir(root, people=50, seed=3)
    return root


def _config(workdir: Path, extra: str) -> Path:
    path = workdir / f"pgw-{abs(hash(extra))}.toml"
    path.write_text((workdir / "pgw.toml").read_text() + extra)
    return path


def test_budgets_default_beside_the_audit_log(workdir: Path) -> None:
    cfg = load_config(workdir / "pgw.toml")
    assert cfg.budgets_dsn is None
    assert cfg.audit_dsn == f"sqlite:///{workdir / 'audit.db'}"
    assert default_budget_dsn(cfg.audit_dsn) == f"sqlite:///{workdir / 'budgets.db'}"
    pg = "postgresql://postgres@db:5432/pgw?options=-csearch_path%3Dpgw"
    assert default_budget_dsn(pg) == pg


@pytest.mark.parametrize(("value", "want"), [
    ('"state/budgets.db"', "sqlite:///{workdir}/state/budgets.db"),
    ('"redis://cache:6379/2"', "redis://cache:6379/2"),
    ('"postgresql://postgres@db/pgw"', "postgresql://postgres@db/pgw"),
])
def test_budgets_dsn(workdir: Path, value: str, want: str) -> None:
    cfg = load_config(_config(workdir, f"\n[budgets]\ndsn = {value}\n"))
    assert cfg.budgets_dsn == want.format(workdir=workdir)


def test_budgets_section_rejects_unknown_keys(workdir: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[budgets\] unknown key\(s\): dns"):
        load_config(_config(workdir, '\n[budgets]\ndns = "x"\n'))
