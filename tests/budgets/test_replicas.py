"""Budgets shared by replicas: two ``pgw gateway serve`` processes on one PostgreSQL database
(audit log and, by default, the budgets in the same schema). One subject's daily budget of N
queries is hit exactly: of 3N concurrent queries spread over both replicas, N are answered and
every other one is RESOURCE_EXHAUSTED with the QuotaFailure, whichever replica it reached.

The crash rig's work directory and connector subprocesses are reused; its agreements have rate
and budget limits lifted, and this rig then sets hpf-loan-edu's per-subject budget to N before
the connectors load the same copy.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
from pgw_budget_support import pg_base
from pgw_crash_harness import CrashRig, pg_schema

from gateway.budgets import quota_violations
from gateway.client import GatewayClient

pytestmark = pytest.mark.postgres
N = 6
FIELDS = [("education", "highest_degree")]


class BudgetRig(CrashRig):
    def _start_connectors(self) -> None:
        path = self.workdir / "policies" / "agreements" / "hpf-loan-edu.yaml"
        text, n = re.subn(r"(?m)^(  requests_per_minute: \d+)$",
                          rf"\1\n  queries_per_subject_per_day: {N}", path.read_text())
        assert n == 1
        path.write_text(text)
        super()._start_connectors()


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BudgetRig]:
    with pg_schema(pg_base()) as dsn:
        r = BudgetRig(tmp_path_factory.mktemp("budget-replicas"), audit_dsn=dsn, seed=8,
                      people=60, witness_interval_ms=500)
        try:
            yield r
        finally:
            r.close()


def _clear_of_midnight() -> None:
    """The counter is per UTC day: do not straddle midnight."""
    now = datetime.now(UTC)
    left = 86_400 - (now.hour * 3600 + now.minute * 60 + now.second)
    if left < 20:
        time.sleep(left + 1)


def test_two_replicas_share_one_subject_budget_exactly(rig: BudgetRig) -> None:
    procs = [rig._start_gateway() for _ in range(2)]
    try:
        outcomes = asyncio.run(_run(rig, procs))
        for proc, _ in procs:
            proc.terminate()
        codes = [proc.wait(60) for proc, _ in procs]
    finally:
        for proc, _ in procs:
            rig._kill(proc)
    assert codes == [0, 0]
    assert outcomes["OK"] == N, outcomes
    assert outcomes["RESOURCE_EXHAUSTED subject#0"] == 2 * N, outcomes


async def _run(rig: BudgetRig, procs: list[tuple[subprocess.Popen[bytes], Path]]
               ) -> Counter[str]:
    addresses = await asyncio.gather(*(rig._serving(p, log) for p, log in procs))
    clients = [GatewayClient(a, rig._token(), timeout_s=20) for a in addresses]
    subject = rig.ids[0]
    _clear_of_midnight()

    async def one(i: int) -> str:
        try:
            await clients[i % 2].query("loan-eligibility", [subject], FIELDS)
        except grpc.aio.AioRpcError as err:
            violations = quota_violations(err)
            want = [("subject#0", f"limits.queries_per_subject_per_day = {N}")]
            if err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and violations == want:
                return "RESOURCE_EXHAUSTED subject#0"
            return f"{err.code().name}: {err.details()}"
        return "OK"

    try:
        return Counter(await asyncio.gather(*(one(i) for i in range(3 * N))))
    finally:
        for c in clients:
            await c.close()
