"""The gateway under concurrent load, killed with SIGKILL at random moments, on both backends.

DESIGN.md ("Audit chain"): an acknowledged entry survives kill -9. Here the whole gateway is the
process that dies, not just the audit log: 16 concurrent requesters query ``pgw gateway serve``
and it is SIGKILLed 50-400 ms after its first answer, at least 50 times per backend, plus a kill
during start-up every eighth cycle (imports, tree rebuild, recovery checkpoint). After every kill
each answered request must be in the store at its receipt's leaf index, and at the end the log
must verify (see ``_harness.py`` for what exactly is checked and why).

The seed is fresh per run and printed; ``PGW_CRASH_SEED=N`` replays a run's choices (kill
moments, subjects), though not the scheduler's timing.
"""

from __future__ import annotations

import asyncio
import time

from pgw_crash_harness import CrashRig

LOAD_KILLS = 50
EARLY_EVERY = 8  # one start-up kill before every eighth load cycle


def test_answered_requests_survive_gateway_kill_9(crash_rig: CrashRig, crash_seed: int) -> None:
    print(f"crash seed {crash_seed} (PGW_CRASH_SEED={crash_seed} replays it)")
    started = time.monotonic()

    async def run() -> None:
        for i in range(LOAD_KILLS):
            if i % EARLY_EVERY == EARLY_EVERY - 1:
                await crash_rig.cycle(i, early=True)
            await crash_rig.cycle(i)
            crash_rig.connectors_alive()

    try:
        asyncio.run(run())
        report = asyncio.run(crash_rig.final_check())
    except AssertionError as exc:
        raise AssertionError(f"seed {crash_seed}: {exc}") from exc
    load = [c for c in crash_rig.cycles if not c.early]
    answered_by_cycles = sum(c.answered for c in load)
    print(f"{len(crash_rig.cycles)} kills ({len(load)} under load), {answered_by_cycles} "
          f"answered before a kill, {report.entries} entries; as left by the last kill: "
          f"{report.pre_restart_finding or 'verifies'}; after the restart: "
          f"{report.verify_output} [{time.monotonic() - started:.1f} s]")
    assert len(load) >= LOAD_KILLS, f"seed {crash_seed}"
    assert all(c.answered > 0 for c in load), f"seed {crash_seed}: a cycle answered nothing"
    assert not report.lost, (f"seed {crash_seed}: {len(report.lost)} acknowledged entries lost: "
                             + ", ".join(f"{a.request_id}@{a.leaf_index} (cycle {a.cycle})"
                                         for a in report.lost[:5]))
    assert report.entries >= report.answered, f"seed {crash_seed}"
    assert report.verify_rc == 0, f"seed {crash_seed}: pgw audit verify: {report.verify_output}"
