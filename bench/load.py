#!/usr/bin/env python3
"""Load and soak: concurrent requesters against ``pgw gateway serve`` for a bounded time.

    python bench/load.py                      # 60 s, 16 clients, SQLite audit store
    python bench/load.py --seconds 600 --clients 32
    python bench/load.py --backend postgres --pg-dsn postgresql://postgres@127.0.0.1:5432/test

Three ``pgw connector serve`` processes and one ``pgw gateway serve`` run as subprocesses (the
crash rig's work directory: ``tests/crash/_harness.py``, agreements with rate limits lifted).
Each client loops over a mix: allowed loan-eligibility queries (70 %), queries naming an unlisted
field (``bank.card_number``, 10 %), queries for a purpose the fields are not granted for (10 %)
and explains (10 %). The gateway's RSS is sampled every second from ``/proc``.

At the end (after SIGTERM, which must exit 0) it checks: audit entries == decisions made (every
OK and every expected PERMISSION_DENIED is one entry), ``pgw audit verify`` exits 0, no error
but the expected refusals, and the RSS of the gateway steady: the mean of the last third of the
samples at most 10 % above the mean of the first third. Exit status 0 only if all hold.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc

HARNESS = Path(__file__).resolve().parent.parent / "tests" / "crash" / "_harness.py"
ALLOWED = [("social-security", "contribution_months"), ("education", "highest_degree"),
           ("bank", "overdue_flag")]
UNLISTED = [("bank", "card_number")]
WRONG_PURPOSE = ("withdrawal-review", [("bank", "overdue_flag")])


def load_harness() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pgw_crash_harness", HARNESS)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load the rig from {HARNESS}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def drive(rig: Any, address: str, pid: int, seconds: float, clients: int,
                seed: int) -> dict[str, Any]:
    from gateway.client import GatewayClient

    stop = time.monotonic() + seconds
    outcomes: Counter[str] = Counter()
    unexpected: Counter[str] = Counter()
    latencies: dict[str, list[float]] = {"query": [], "refusal": [], "explain": []}
    rss: list[int] = []

    async def sample() -> None:
        while time.monotonic() < stop:
            rss.append(rss_kib(pid))
            await asyncio.sleep(1.0)

    async def client(n: int) -> None:
        rng = random.Random(seed * 1000 + n)
        async with GatewayClient(address, rig._token(), timeout_s=30) as c:
            while time.monotonic() < stop:
                roll = rng.random()
                subjects = rng.sample(rig.ids, rng.randint(1, 5))
                started = time.perf_counter()
                try:
                    if roll < 0.7:
                        kind, want = "query", "OK"
                        await c.query("loan-eligibility", subjects, ALLOWED)
                    elif roll < 0.8:
                        kind, want = "refusal", "PERMISSION_DENIED"
                        await c.query("loan-eligibility", subjects, UNLISTED)
                    elif roll < 0.9:
                        kind, want = "refusal", "PERMISSION_DENIED"
                        await c.query(WRONG_PURPOSE[0], subjects, WRONG_PURPOSE[1])
                    else:
                        kind, want = "explain", "OK"
                        await c.explain("loan-eligibility", ALLOWED, len(subjects))
                    got = "OK"
                except grpc.aio.AioRpcError as err:
                    got = err.code().name
                    if got != want:
                        unexpected[f"{kind}: {got}: {err.details()}"] += 1
                latencies[kind].append(time.perf_counter() - started)
                outcomes[f"{kind} {got}"] += 1
                if got == "OK" and want != "OK":
                    unexpected[f"{kind}: OK, want {want}"] += 1

    await asyncio.gather(sample(), *(client(n) for n in range(clients)))
    return {"outcomes": outcomes, "unexpected": unexpected, "latencies": latencies, "rss": rss}


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] * 1e3 if len(values) >= 2 else 0.0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=60.0, help="load duration (default 60)")
    p.add_argument("--clients", type=int, default=16, help="concurrent requesters (default 16)")
    p.add_argument("--people", type=int, default=2000, help="synthetic people (default 2000)")
    p.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    p.add_argument("--pg-dsn", default=os.environ.get("PGW_TEST_PG_DSN"))
    p.add_argument("--seed", type=int, default=6)
    args = p.parse_args(argv)
    h = load_harness()
    with contextlib.ExitStack() as stack:
        dsn = None
        if args.backend == "postgres":
            if not args.pg_dsn:
                raise SystemExit("--backend postgres needs --pg-dsn or PGW_TEST_PG_DSN")
            dsn = stack.enter_context(h.pg_schema(args.pg_dsn))
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pgw-load-")))
        rig = h.CrashRig(work, audit_dsn=dsn, seed=args.seed, people=args.people)
        stack.callback(rig.close)
        proc, log = rig._start_gateway()
        try:
            address = asyncio.run(rig._serving(proc, log))
            result = asyncio.run(drive(rig, address, proc.pid, args.seconds, args.clients,
                                       args.seed))
            proc.terminate()
            exit_code = proc.wait(60)
        finally:
            rig._kill(proc)
        from gateway.audit._store import open_store

        store = open_store(rig.cfg.audit_dsn)
        try:
            entries = store.size()
        finally:
            store.close()
        verify = subprocess.run([sys.executable, "-c", h.SERVE, "audit", "verify", "--config",
                                 str(rig.config_path)], capture_output=True, text=True,
                                timeout=600, stdin=subprocess.DEVNULL)
    out: Counter[str] = result["outcomes"]
    decisions = sum(n for k, n in out.items()
                    if k.endswith(" OK") or k == "refusal PERMISSION_DENIED")
    rss = result["rss"][1:] or result["rss"]   # the first sample is taken before any load
    third = max(1, len(rss) // 3)
    first, last = statistics.mean(rss[:third]), statistics.mean(rss[-third:])
    growth = (last - first) / first * 100 if first else 0.0
    calls = sum(out.values())
    lat = result["latencies"]
    print(f"load: {args.seconds:.0f} s, {args.clients} clients, {args.backend}, "
          f"{args.people} people")
    print(f"calls: {calls} ({calls / args.seconds:.0f}/s): "
          + ", ".join(f"{k} {n}" for k, n in sorted(out.items())))
    for kind, values in lat.items():
        if values:
            print(f"  {kind:8s} p50 {pct(values, 50):6.1f} ms  p95 {pct(values, 95):6.1f} ms  "
                  f"p99 {pct(values, 99):6.1f} ms")
    print(f"audit entries {entries}, decisions {decisions}")
    print(f"gateway RSS: first third {first / 1024:.1f} MiB, last third {last / 1024:.1f} MiB "
          f"({growth:+.1f} %), max {max(rss) / 1024:.1f} MiB over {len(rss)} samples")
    print(f"SIGTERM exit {exit_code}; pgw audit verify: {(verify.stdout + verify.stderr).strip()}")
    problems = []
    if entries != decisions:
        problems.append(f"audit entries {entries} != decisions {decisions}")
    if verify.returncode != 0:
        problems.append("the log does not verify")
    if result["unexpected"]:
        problems.append(f"unexpected outcomes: {result['unexpected'].most_common(5)}")
    if growth >= 10:
        problems.append(f"RSS grew {growth:.1f} % (limit 10 %)")
    if exit_code != 0:
        problems.append(f"gateway exited {exit_code} on SIGTERM, want 0; log {log}")
    print("RESULT: " + ("OK" if not problems else "FAILED: " + "; ".join(problems)))
    return 0 if not problems else 1


if __name__ == "__main__":
    raise SystemExit(main())
