#!/usr/bin/env python3
"""Cost of the budget check on the query path: ``Budgets.request`` per loan-eligibility query.

    python bench/budgets.py                          # SQLite file (the embedded default)
    python bench/budgets.py --subjects 1,5,50        # subjects per query
    python bench/budgets.py --dsn postgresql://postgres@127.0.0.1:5432/test --dsn redis://127.0.0.1:6379/15

Each call is what ``Query`` spends for the shipped loan-eligibility agreements (social security,
real estate, education, bank): four rate counters, four daily volumes and, per subject, one
per-subject counter (social security and real estate set ``queries_per_subject_per_day``), HMAC
of each id included, with the limits raised so that nothing is refused. Calls run back to back
on one event loop, as the gateway makes them; the figure is wall time per call (p50 and mean).
The target for the embedded default is well under 0.2 ms per query.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import format_table, machine_description

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.budgets import Budgets, open_budget_store  # noqa: E402
from gateway.policy import Agreement, load_policies  # noqa: E402
from gateway.workdir import shipped_policies  # noqa: E402

LOAN = ("hpf-loan-ss", "hpf-loan-re", "hpf-loan-edu", "hpf-loan-bank")
HIGH = 10**12


def loan_agreements() -> list[Agreement]:
    """The shipped loan agreements, every limit raised so that the bench is never refused."""
    policies = load_policies(shipped_policies())
    out = []
    for aid in LOAN:
        a = policies.agreement(aid)
        raised = {k: HIGH for k, v in dataclasses.asdict(a.limits).items() if v is not None}
        out.append(dataclasses.replace(a, limits=dataclasses.replace(a.limits, **raised)))
    return out


async def measure(dsn: str, subjects: int, calls: int) -> tuple[float, float]:
    budgets = Budgets(await open_budget_store(dsn), b"b" * 32)
    agreements = loan_agreements()
    ids = [f"{i:018d}" for i in range(calls * subjects)]
    times = []
    try:
        for n in range(calls + 200):  # the first 200 warm the statement caches
            batch = ids[(n % calls) * subjects:(n % calls + 1) * subjects]
            t0 = time.perf_counter()
            await budgets.request("hpf-changzhou", agreements, subjects=batch)
            times.append(time.perf_counter() - t0)
    finally:
        await budgets.aclose()
    measured = times[200:]
    return statistics.median(measured) * 1e6, statistics.fmean(measured) * 1e6


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dsn", action="append", help="store DSN (default: a SQLite temp file)")
    p.add_argument("--subjects", default="1,5,50", help="subjects per query, comma-separated")
    p.add_argument("--calls", type=int, default=5000)
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="pgw-bench-budgets-") as tmp:
        for dsn in args.dsn or [f"sqlite:///{tmp}/budgets.db"]:
            for n in (int(x) for x in args.subjects.split(",")):
                p50, mean = asyncio.run(measure(dsn, n, args.calls))
                rows.append([dsn.split("://")[0], n, 8 + n, f"{p50:.1f}", f"{mean:.1f}"])
    print(machine_description())
    print(format_table(["store", "subjects", "charges", "p50 us/query", "mean us/query"], rows))


if __name__ == "__main__":
    main()
