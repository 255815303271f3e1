"""Scale-out (issue 6, item 5): three ``pgw gateway serve`` replicas on one PostgreSQL audit store.

The crash rig's work directory and connector subprocesses are reused (``pgw_crash_harness``);
the audit log is a fresh PostgreSQL schema. Two replicas start together (schema creation under
the advisory lock), load runs from 12 concurrent requesters spread round-robin over the
replicas, and the third replica starts *while* the others are appending (its tree rebuild races
their commits and checkpoints). Then all three get SIGTERM (exit 0) and the log must be one
sequence: dense indexes, no index reused, no request logged twice, every answered request at its
receipt's leaf index, every receipt's checkpoint a prefix of the final tree, and
``pgw audit verify`` (with the shipped witness quorum of 2) exits 0.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from pgw_crash_harness import FIELDS, PG_ENV, PURPOSE, SERVE, Answer, CrashRig, pg_schema

from gateway.client import GatewayClient

pytestmark = pytest.mark.postgres
REPLICAS = 3
CLIENTS = 12
LOAD_S = 6.0


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CrashRig]:
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} not set: the replica test needs a PostgreSQL server")
    with pg_schema(base) as dsn:
        r = CrashRig(tmp_path_factory.mktemp("replicas"), audit_dsn=dsn, seed=6,
                     witness_interval_ms=200)
        try:
            yield r
        finally:
            r.close()


def test_three_replicas_share_one_sequence_under_concurrent_load(rig: CrashRig) -> None:
    procs: list[tuple[subprocess.Popen[bytes], Path]] = []
    try:
        answers, failed, per_replica = asyncio.run(_run(rig, procs))
        codes = []
        for proc, _ in procs:
            proc.terminate()
        for proc, _log in procs:
            codes.append(proc.wait(60))
    finally:
        for proc, _ in procs:
            rig._kill(proc)
    logs = "\n".join(f"--- {log}\n{log.read_text(errors='replace')[-2000:]}" for _, log in procs)
    assert codes == [0] * REPLICAS, logs
    assert not failed, f"calls failed: {failed.most_common(3)}\n{logs}"
    assert all(n > 20 for n in per_replica), per_replica   # the load did reach every replica
    rig.answers = answers
    entries, lost = rig._check_all()    # dense, unique ids, receipts at their index, prefixes
    assert not lost, [(a.request_id, a.leaf_index) for a in lost[:5]]
    assert entries >= len(answers)
    leaves = [a.leaf_index for a in answers]
    assert len(set(leaves)) == len(leaves), "an index was handed out twice"
    run = subprocess.run([sys.executable, "-c", SERVE, "audit", "verify", "--config",
                          str(rig.config_path)], capture_output=True, text=True, timeout=300,
                         stdin=subprocess.DEVNULL)
    assert run.returncode == 0, run.stdout + run.stderr
    print(f"{REPLICAS} replicas: {len(answers)} answered {per_replica}, {entries} entries; "
          f"verify: {run.stdout.strip()}")


async def _run(rig: CrashRig, procs: list[tuple[subprocess.Popen[bytes], Path]]
               ) -> tuple[list[Answer], Counter[str], list[int]]:
    for _ in range(2):                       # two start together: schema under the lock
        procs.append(rig._start_gateway())
    addresses = list(await asyncio.gather(*(rig._serving(p, log) for p, log in procs)))
    answers: list[Answer] = []
    failed: Counter[str] = Counter()
    per_replica = [0] * REPLICAS
    stop = time.monotonic() + LOAD_S
    rng = random.Random(6)

    async def client(n: int) -> None:
        clients = {}
        try:
            i = n
            while time.monotonic() < stop:
                k = i % len(addresses)
                if k not in clients:
                    clients[k] = GatewayClient(addresses[k], rig._token(), timeout_s=20)
                try:
                    response = await clients[k].query(PURPOSE, rng.sample(rig.ids, 2), FIELDS)
                except grpc.aio.AioRpcError as err:
                    failed[f"{err.code().name}: {err.details()}"] += 1
                else:
                    answers.append(rig._answer(0, response.request_id, response.receipt))
                    per_replica[k] += 1
                i += 1
        finally:
            for c in clients.values():
                await c.close()

    async def third() -> None:                # joins while the other two are appending
        await asyncio.sleep(LOAD_S / 4)
        procs.append(rig._start_gateway())
        addresses.append(await rig._serving(*procs[-1]))

    await asyncio.gather(third(), *(client(n) for n in range(CLIENTS)))
    return answers, failed, per_replica
