"""Budgets through real servers on sockets (port 0): Query, linear Compute and Join refused with
QuotaFailure and audited as ``deny`` without ids; the SQLite budget file holds no ids and
survives a gateway restart; a PostgreSQL store that goes away fails closed (``UNAVAILABLE``,
audited as ``error``) and is used again once back.

The stack runs a policy copy with tight budgets: hpf-loan-ss 3 queries per subject a day,
hpf-risk-ss 2, hpf-fraud-ss 60 subjects a day (at most 40 per job).
"""

from __future__ import annotations

import dataclasses
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import grpc
import pytest
from pgw_budget_support import pg_base
from pgw_it_harness import (
    LOAN_SS,
    LoopThread,
    RawData,
    Stack,
    code_of,
    copy_policies,
    isolated_cfg,
    sqlite_path,
    start_stack,
)

from gateway.budgets import quota_violations
from gateway.client import ComputeClient, JoinClient
from gateway.config import load_config
from gateway.privacy import HeKeys
from gateway.server import start_gateway
from gateway.workdir import init_workdir

EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED
SS = {"social-security": LOAN_SS[:2]}


def _tighten(policies: Path) -> None:
    edits = {"hpf-loan-ss": [(r"queries_per_subject_per_day: \d+",
                              "queries_per_subject_per_day: 3")],
             "hpf-risk-ss": [(r"(requests_per_minute: \d+)",
                              r"\1\n  queries_per_subject_per_day: 2")],
             "hpf-fraud-ss": [(r"max_subjects_per_request: \d+", "max_subjects_per_request: 40"),
                              (r"(requests_per_minute: \d+)", r"\1\n  subjects_per_day: 60")]}
    for stem, subs in edits.items():
        path = policies / "agreements" / f"{stem}.yaml"
        text = path.read_text()
        for pattern, repl in subs:
            text, n = re.subn(pattern, repl, text)
            assert n == 1, (stem, pattern)
        path.write_text(text)


@pytest.fixture(scope="module")
def stack(loop: LoopThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("budgets")
    init_workdir(root, people=200, seed=20261208)
    policies = copy_policies(root / "policies", root / "tight", {})
    _tighten(policies)
    s = start_stack(loop, isolated_cfg(load_config(root / "pgw.toml"), root / "stack",
                                       policies=policies))
    yield s
    s.close()


@pytest.fixture(scope="module")
def people(stack: Stack) -> list[str]:
    return RawData(stack.cfg).in_all


def test_query_over_a_subject_budget_is_refused_whole_and_audited_without_ids(
        stack: Stack, people: list[str]) -> None:
    p0, p1 = people[0], people[1]
    for _ in range(3):
        stack.query("loan-eligibility", [p0], SS)
    err = code_of(lambda: stack.query("loan-eligibility", [p1, p0], SS))
    assert err.code() == EXHAUSTED, (err.code(), err.details())
    assert quota_violations(err) == [("subject#1", "limits.queries_per_subject_per_day = 3")]
    assert p0 not in (err.details() or "") and p1 not in (err.details() or "")
    entry = stack.audit()[-1]
    assert (entry.kind, entry.decision, entry.released) == ("query", "deny", ())
    assert entry.reason == ("budget: limits.queries_per_subject_per_day = 3 reached for "
                            "subject#1 under hpf-loan-ss v1")
    for _ in range(3):  # the refused request charged p1 nothing
        stack.query("loan-eligibility", [p1], SS)


def test_the_budget_file_holds_no_ids(stack: Stack, people: list[str]) -> None:
    stack.query("loan-eligibility", people[2:4], SS)
    db = sqlite_path(stack.cfg.audit_dsn).with_name("budgets.db")
    keys = [k for (k,) in sqlite3.connect(db).execute("SELECT key FROM budget_counters")]
    assert any(k.startswith("subject:") for k in keys)
    assert not any(p in k for k in keys for p in people)


def test_linear_scores_are_budgeted_per_subject(stack: Stack, people: list[str]) -> None:
    keys = HeKeys.ckks()

    async def score() -> object:
        async with ComputeClient(stack.address, stack.token(), keys=keys) as client:
            return await client.score("hpf-loan-risk", people[10:11], purpose="loan-risk-scoring")

    for _ in range(2):
        stack.loop.run(score())
    err = code_of(lambda: stack.loop.run(score()))
    assert err.code() == EXHAUSTED
    assert quota_violations(err) == [("subject#0", "limits.queries_per_subject_per_day = 2")]
    entry = stack.audit()[-1]
    assert (entry.kind, entry.decision, entry.released) == ("compute", "deny", ())


def test_join_volume_counts_the_requester_set(stack: Stack, people: list[str]) -> None:
    async def join(items: list[str]) -> object:
        async with JoinClient(stack.address, stack.token()) as client:
            return await client.join("social-security", "fraud-detection", "ecdh-psi",
                                     "cardinality", items)

    stack.loop.run(join(people[20:60]))                    # 40 of 60
    err = code_of(lambda: stack.loop.run(join(people[60:100])))
    assert err.code() == EXHAUSTED
    assert quota_violations(err) == [("agreement:hpf-fraud-ss", "limits.subjects_per_day = 60")]
    assert stack.audit()[-1].decision == "deny"
    stack.loop.run(join(people[60:80]))                    # 60 of 60


def test_sqlite_budgets_survive_a_gateway_restart(stack: Stack, people: list[str]) -> None:
    p = people[30]
    for _ in range(3):
        stack.query("loan-eligibility", [p], SS)
    stack.loop.run(stack.gateway.stop(0.5))
    stack.gateway = stack.loop.run(start_gateway(stack.cfg, listen="127.0.0.1:0"))
    stack._stub = None  # the restarted gateway listens on a new port
    err = code_of(lambda: stack.query("loan-eligibility", [p], SS))
    assert err.code() == EXHAUSTED, (err.code(), err.details())
    stack.query("loan-eligibility", [people[31]], SS)


@pytest.mark.postgres
def test_an_unreachable_store_fails_closed_then_recovers(stack: Stack, people: list[str],
                                                         tmp_path: Path) -> None:
    from pgw_crash_harness import pg_schema
    from pgw_hardening_faults import TcpProxy

    with pg_schema(pg_base()) as dsn:
        url = urlsplit(dsn)
        proxy = TcpProxy(stack.loop, (url.hostname or "127.0.0.1", url.port or 5432))
        via = urlunsplit(url._replace(netloc=f"{url.username}@127.0.0.1:{proxy.port}"))
        cfg = isolated_cfg(stack.cfg, tmp_path, budgets_dsn=via)
        running = stack.loop.run(start_gateway(cfg, listen="127.0.0.1:0"))
        gw = dataclasses.replace(stack, cfg=cfg, gateway=running, partners={}, _channels=[],
                                 _stub=None)
        try:
            gw.query("loan-eligibility", people[40:41], SS)
            proxy.cut()
            err = code_of(lambda: gw.query("loan-eligibility", people[40:41], SS))
            assert err.code() == grpc.StatusCode.UNAVAILABLE, (err.code(), err.details())
            assert err.details() == ("the budget store cannot be reached; nothing was "
                                     "released, retry later")
            entry = gw.audit()[-1]
            assert (entry.decision, entry.released) == ("error", ())
            assert entry.reason.startswith("budget store spend")
            proxy.restore()
            gw.query("loan-eligibility", people[40:41], SS)   # reconnected
        finally:
            gw.close(owned=())
            proxy.close()
