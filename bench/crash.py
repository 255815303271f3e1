#!/usr/bin/env python3
"""Kill the gateway with SIGKILL under concurrent load, many times; then check the audit log.

    python bench/crash.py                                   # 200 cycles on SQLite
    python bench/crash.py --cycles 500 --backend postgres \\
        --pg-dsn postgresql://postgres@127.0.0.1:5432/test  # a fresh schema, dropped afterwards

The same loop as ``tests/crash/test_gateway_kill.py`` (the rig lives in
``tests/crash/_harness.py`` and is loaded from there): three ``pgw connector serve`` processes
run throughout; each cycle starts ``pgw gateway serve``, drives ``--concurrency`` concurrent
loan-eligibility queries and SIGKILLs it 50-400 ms after its first answer (every
``--early-every``-th cycle there is also a kill during start-up). After every kill each answered
request must be in the store at its receipt's leaf index; at the end the log as left is verified
(only an unacknowledged tail may be unsigned), the gateway is restarted once and stopped with
SIGTERM, and every answer, the entries and ``pgw audit verify`` are checked.

Exit status 0 only if no acknowledged entry was lost and the log verifies. The seed is printed;
``--seed`` replays a run's choices (not the scheduler's timing).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

HARNESS = Path(__file__).resolve().parent.parent / "tests" / "crash" / "_harness.py"


def load_harness() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pgw_crash_harness", HARNESS)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load the crash rig from {HARNESS}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cycles", type=int, default=200, help="kills under load (default 200)")
    p.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    p.add_argument("--pg-dsn", default=os.environ.get("PGW_TEST_PG_DSN"),
                   help="PostgreSQL server for --backend postgres (default: $PGW_TEST_PG_DSN); "
                   "a fresh schema is created and dropped")
    p.add_argument("--seed", type=int, help="default: a fresh one, printed")
    p.add_argument("--concurrency", type=int, default=16, help="concurrent requesters")
    p.add_argument("--early-every", type=int, default=8, metavar="N",
                   help="also kill during start-up before every N-th cycle (0: never)")
    p.add_argument("--people", type=int, default=300, help="synthetic people per partner")
    p.add_argument("--workdir", type=Path, help="keep the work directory (logs, audit.db) here")
    args = p.parse_args(argv)
    if args.cycles < 1:
        p.error(f"--cycles: got {args.cycles}, want >= 1")
    if args.backend == "postgres" and not args.pg_dsn:
        p.error("--backend postgres needs --pg-dsn or PGW_TEST_PG_DSN")
    return args


async def run_cycles(rig: Any, args: argparse.Namespace, started: float) -> None:
    answered = 0
    for i in range(args.cycles):
        if args.early_every and i % args.early_every == args.early_every - 1:
            await rig.cycle(i, early=True)
        result = await rig.cycle(i)
        rig.connectors_alive()
        answered += result.answered
        if (i + 1) % 10 == 0 or i + 1 == args.cycles:
            print(f"  cycle {i + 1:>4}/{args.cycles}: up in {result.start_s:.2f} s, killed "
                  f"{result.kill_after_ms:3.0f} ms after the first answer, {result.answered:>3} "
                  f"answered; {answered} in all [{time.monotonic() - started:.1f} s]", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    harness = load_harness()
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "big")
    print(f"crash bench: {args.cycles} SIGKILLs under load on {args.backend}, "
          f"{args.concurrency} concurrent requesters, seed {seed}", flush=True)
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        workdir = args.workdir or Path(stack.enter_context(
            tempfile.TemporaryDirectory(prefix="pgw-crash-")))
        dsn = stack.enter_context(harness.pg_schema(args.pg_dsn)) \
            if args.backend == "postgres" else None
        rig = harness.CrashRig(workdir / "work", audit_dsn=dsn, seed=seed, people=args.people,
                               concurrency=args.concurrency)
        stack.callback(rig.close)
        try:
            asyncio.run(run_cycles(rig, args, started))
            report = asyncio.run(rig.final_check())
        except AssertionError as exc:
            print(f"FAILED (seed {seed}): {exc}", file=sys.stderr)
            return 1
    elapsed = time.monotonic() - started
    load = [c for c in rig.cycles if not c.early]
    before_kill = sum(c.answered for c in load)
    print_summary(args, seed, rig, report, load, before_kill, elapsed)
    return 0 if not report.lost and report.verify_rc == 0 else 1


def print_summary(args: argparse.Namespace, seed: int, rig: Any, r: Any, load: list[Any],
                  before_kill: int, elapsed: float) -> None:
    rows = [
        ("backend", args.backend),
        ("seed", seed),
        ("gateway kills", f"{len(rig.cycles)} ({len(load)} under load, "
         f"{len(rig.cycles) - len(load)} during start-up)"),
        ("answered requests", f"{r.answered} ({before_kill} before a kill, "
         f"{r.answered - before_kill} after the final restart)"),
        ("answered per load cycle", f"mean {statistics.mean(c.answered for c in load):.1f}, "
         f"min {min(c.answered for c in load)}, max {max(c.answered for c in load)}"),
        ("gateway start to SERVING", f"mean {statistics.mean(c.start_s for c in load):.2f} s, "
         f"max {max(c.start_s for c in load):.2f} s"),
        ("entries in the log", r.entries),
        ("committed, never acknowledged", r.entries - r.answered),
        ("lost acknowledged entries", f"{len(r.lost)} (must be 0)"),
        ("log as the last crash left it", r.pre_restart_finding or "verifies"),
        ("pgw audit verify after restart", f"exit {r.verify_rc}: {r.verify_output}"),
        ("time", f"{elapsed:.1f} s ({elapsed / len(rig.cycles):.2f} s per kill)"),
    ]
    width = max(len(k) for k, _ in rows)
    print("\nsummary")
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")


if __name__ == "__main__":
    sys.exit(main())
