#!/usr/bin/env python3
"""Encrypted linear score: pgw end to end (gRPC) vs the bare TenSEAL pipeline vs numpy.

    python bench/he.py                      # 2^20 subjects x 3 features
    python bench/he.py --subjects 65536     # smaller

* **pgw**, as deployed: the three connectors (social security, education, bank) and the
  gateway each run in their own spawned process (``bench/_servers.py``) with their own 2-worker
  HE pool; this process is the requester. The SDK streams the subjects; each connector checks
  them, reads its SQLite column and encrypts it in its pool; the gateway evaluates the approved
  model ``hpf-loan-risk`` on ciphertexts in its pool as they arrive, audits, and streams the
  result; the SDK decrypts. Timed from the call to the decrypted scores (keys made before, the
  servers' pools started by an untimed warm-up call). Two timed calls over the same subjects:
  the first reads each partner's table (one scan per column), the second finds the columns in
  the connectors' column caches, as the baselines start from columns in memory; both are
  printed.
* **bare TenSEAL**: the same parameters in this process, one thread, no serialisation: encrypt
  the three columns (4096 per ciphertext), weighted sum plus bias, decrypt.
* **numpy**: ``weights @ X + bias``.

All share this machine's cores, in the same run. Gateway and SDK keep the shipped 16 MiB gRPC
message ceiling (the audit receipt of a bulk compute is about a kilobyte: its subjects are in a
subject set beside the entry). The shipped agreements allow 4096 subjects per
request; the bench writes its own copy of the policies into its workdir with a higher limit
(gateway and connectors read the same copy). Reported: the CPU seconds each process (with its
workers) spent in the timed call, the load average, and each process's peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import resource
import sqlite3
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _common import fresh_audit_log, load_average, widen_limits  # noqa: E402
from _servers import ServerProcess, describe, tree_usage  # noqa: E402

SEED = 20261125
MODEL = "hpf-loan-risk"
PARTNERS = ("social-security", "education", "bank")
TABLES = {"social-security": "social_security", "education": "education", "bank": "bank"}


def prepare(workdir: Path, subjects: int) -> Path:
    from gateway.workdir import init_workdir

    config = workdir / "pgw.toml"
    if not config.exists():
        people = math.ceil(subjects * 1.25) + 64  # social security holds ~85%
        print(f"generating {people:,} synthetic people in {workdir}", flush=True)
        init_workdir(workdir, people=people, seed=SEED)
    for path in (workdir / "policies" / "agreements").glob("*.yaml"):
        widen_limits(path, 1 << 21)
    fresh_audit_log(workdir)
    return config


def columns(cfg: object, subjects: list[str]) -> list[list[float]]:
    """The model's inputs in plain, read straight from the partners' files (for the baselines)."""
    from gateway.policy import load_models

    model = load_models(cfg.policies)[MODEL]  # type: ignore[attr-defined]
    out = []
    for item in model.inputs:
        db = cfg.connector(item.partner).database  # type: ignore[attr-defined]
        uri = Path(db).resolve().as_uri() + "?mode=ro"
        conn = sqlite3.connect(uri, uri=True)
        try:
            rows = dict(conn.execute(f'SELECT person_id, "{item.field}" FROM '
                                     f'"{TABLES[item.partner]}"'))
        finally:
            conn.close()
        out.append([float(rows.get(s) or 0.0) for s in subjects])
    return out


def spent(before: dict[str, float], after: dict[str, float]) -> str:
    return (f"{after['cpu_s'] - before['cpu_s']:.1f} "
            f"(main {after['main_cpu_s'] - before['main_cpu_s']:.1f})")


@dataclass
class PgwRun:
    """Two timed calls over the same subjects: the first reads the partners' tables, the
    second finds the columns in the connectors' column caches (``_column_cache``)."""

    cold_s: float
    warm_s: float
    scores: list[float]
    cold_cpu: str
    warm_cpu: str
    peaks: str


async def run_pgw(config: Path, cfg: object, subjects: list[str]) -> PgwRun:
    """pgw end to end, twice: seconds, scores, CPU per process in each call, peak memory."""
    from gateway.auth import DevIssuer
    from gateway.client import ComputeClient
    from gateway.privacy import SLOTS, HeKeys

    issuer = DevIssuer.load(cfg.dev_issuer_dir, issuer=cfg.issuer,  # type: ignore[attr-defined]
                            audience=cfg.audience)  # type: ignore[attr-defined]
    token = issuer.issue("hpf-changzhou", ["requester"], subject="bench-he", ttl_s=6 * 3600)
    keys = HeKeys.ckks()
    partners = [(p, ServerProcess.partner(config, p)) for p in PARTNERS]
    try:
        with ServerProcess.gateway(config, {p: s.port for p, s in partners}) as gateway:
            servers = [("gateway", gateway), *partners]
            async with ComputeClient(f"127.0.0.1:{gateway.port}", token, keys=keys,
                                     timeout_s=3600) as client:
                # warm the channels and start both workers of every server's HE pool (pools
                # spawn workers on demand: a job of 4 tasks of 4 chunks, 16 * 4096 subjects)
                await client.score(MODEL, subjects[:min(len(subjects), 16 * SLOTS)])
                timed = []
                for _ in ("cold", "warm"):
                    before = [s.usage() for _, s in servers] + [tree_usage()]
                    started = time.perf_counter()
                    result = await client.score(MODEL, subjects)
                    elapsed = time.perf_counter() - started
                    after = [s.usage() for _, s in servers] + [tree_usage()]
                    timed.append((elapsed, before, after))
            names = [name for name, _ in servers] + ["requester"]
            cpu = [", ".join(f"{name} {spent(b, a)}"
                             for name, b, a in zip(names, before, after, strict=True))
                   for _, before, after in timed]
            peaks = describe([(name, s.stop()) for name, s in servers]
                             + [("requester", tree_usage())])
    finally:
        for _, server in partners:
            server.stop()
    return PgwRun(timed[0][0], timed[1][0], result.scores, f"CPU s: {cpu[0]}",
                  f"CPU s: {cpu[1]}", peaks)


def run_bare(cols: list[list[float]], weights: list[float],
             bias: float) -> tuple[float, list[float]]:
    import tenseal as ts

    ctx = ts.context(ts.SCHEME_TYPE.CKKS, poly_modulus_degree=8192,
                     coeff_mod_bit_sizes=[60, 40, 40, 60])
    ctx.global_scale = 2.0**40
    n, slots = len(cols[0]), 4096
    started = time.perf_counter()
    enc = [[ts.ckks_vector(ctx, c[i:i + slots]) for i in range(0, n, slots)] for c in cols]
    out: list[float] = []
    for j in range(len(enc[0])):
        acc = enc[0][j] * weights[0]
        for k in range(1, len(enc)):
            acc = acc + enc[k][j] * weights[k]
        acc = acc + bias
        out.extend(acc.decrypt())
    return time.perf_counter() - started, out[:n]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=1 << 20)
    parser.add_argument("--workdir", type=Path, default=None,
                        help="default: /tmp/pgw-bench-he-N (reused if it exists)")
    args = parser.parse_args()
    import numpy as np

    from gateway.config import load_config
    from gateway.logs import configure_logging
    from gateway.policy import load_models

    configure_logging("error")
    workdir = args.workdir or Path(f"/tmp/pgw-bench-he-{args.subjects}")
    config = prepare(workdir, args.subjects)
    cfg = load_config(config)
    from connectors.datagen import load_person_ids

    subjects = load_person_ids(cfg.connector("social-security").database)[:args.subjects]
    if len(subjects) < args.subjects:
        raise SystemExit(f"only {len(subjects)} people in {workdir}; remove it to regenerate")
    model = load_models(cfg.policies)[MODEL]
    weights = [i.weight for i in model.inputs]
    started = time.perf_counter()
    cols = columns(cfg, subjects)
    t_read = time.perf_counter() - started
    n = len(subjects)
    print(f"{n:,} subjects x {len(cols)} features, model {model.label}", flush=True)

    load = load_average()
    run = asyncio.run(run_pgw(config, cfg, subjects))
    load_after = load_average()
    t_bare, bare = run_bare(cols, weights, model.bias)
    started = time.perf_counter()
    plain = np.asarray(weights) @ np.asarray(cols) + model.bias
    t_np = time.perf_counter() - started
    err_pgw = float(np.max(np.abs(np.asarray(run.scores) - plain)))
    err_bare = float(np.max(np.abs(np.asarray(bare) - plain)))
    bare_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"pgw, first call (connectors scan)       {run.cold_s:8.2f} s")
    print(f"pgw, second call (columns cached)       {run.warm_s:8.2f} s   max |err| {err_pgw:.2e}")
    print(f"bare TenSEAL (one process)              {t_bare:8.2f} s   max |err| {err_bare:.2e}")
    print(f"numpy                                   {t_np:8.4f} s")
    print(f"(reading the 3 columns from SQLite for the baselines took {t_read:.2f} s in this "
          "process, untimed: the baselines start from columns in memory, as pgw's second call "
          "does; its first call reads them inside the timed call)")
    print(f"pgw / bare TenSEAL, first call          {run.cold_s / t_bare:8.2f} x")
    print(f"pgw / bare TenSEAL, second call         {run.warm_s / t_bare:8.2f} x  (target <= 1.5)")
    print(f"pgw first call {run.cold_cpu}")
    print(f"pgw second call {run.warm_cpu}; {load} before, {load_after} after "
          f"(bare: {load_average()} after)")
    print(f"pgw peak RSS: {run.peaks}")
    print(f"bench process peak RSS (requester, then bare TenSEAL): {bare_peak:,.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
