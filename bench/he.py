#!/usr/bin/env python3
"""Encrypted linear score: pgw end to end (gRPC) vs the bare TenSEAL pipeline vs numpy.

    python bench/he.py                      # 2^20 subjects x 3 features
    python bench/he.py --subjects 65536     # smaller

* **pgw**: three connectors and the gateway in this process on loopback (HE work in the shared
  spawn pool), the requester SDK streams the subjects, each connector reads its SQLite column and
  encrypts it, the gateway evaluates the approved model ``hpf-loan-risk`` on ciphertexts and
  audits, the SDK decrypts. Timed from the call to the decrypted scores (keys made before).
* **bare TenSEAL**: the same parameters in one process, no serialisation: encrypt the three
  columns (4096 per ciphertext), weighted sum plus bias, decrypt.
* **numpy**: ``weights @ X + bias``.

The shipped agreements allow 4096 subjects per request; the bench writes its own copy of the
policies into its workdir with a higher limit (gateway and connectors read the same copy).
Peak memory: ``ru_maxrss`` of this process and of its (pool) children.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib
import math
import re
import resource
import sqlite3
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

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
        text = re.sub(r"max_subjects_per_request: \d+", "max_subjects_per_request: 2097152",
                      path.read_text())
        path.write_text(re.sub(r"requests_per_minute: \d+", "requests_per_minute: 1000000",
                               text))
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


async def start(cfg: object) -> tuple[object, list[object], str]:
    from connectors.sdk._server import ConnectorService, start_connector
    from connectors.sdk._spec import SpecVerifier
    from gateway.keys import load_public_key, load_secret
    from gateway.policy import load_policies
    from gateway.server import Running, start_gateway

    partners = {}
    for p in PARTNERS:
        ccfg = cfg.connector(p)  # type: ignore[attr-defined]
        policies = load_policies(ccfg.policies).for_partner(p)
        source = importlib.import_module(
            f"connectors.{p.replace('-', '_')}.source").open_source(ccfg.database)
        verifier = SpecVerifier([load_public_key(k) for k in ccfg.trusted_gateway_keys])
        service = ConnectorService(source, policies, verifier, load_secret(ccfg.pseudonym_secret))
        server, port = await start_connector(service, "127.0.0.1:0")
        partners[p] = Running(server, port, [source.aclose])
    live = dataclasses.replace(cfg, connectors={  # type: ignore[type-var]
        p: dataclasses.replace(c, address=f"127.0.0.1:{partners[p].port}")
        for p, c in cfg.connectors.items() if p in partners})  # type: ignore[attr-defined]
    gateway = await start_gateway(live, listen="127.0.0.1:0")
    return gateway, list(partners.values()), f"127.0.0.1:{gateway.port}"


async def run_pgw(cfg: object, subjects: list[str]) -> tuple[float, list[float]]:
    from connectors.sdk._compute import shared_pool
    from gateway.auth import DevIssuer
    from gateway.client import ComputeClient
    from gateway.privacy import HeKeys

    shared_pool().warm_up()
    gateway, partners, address = await start(cfg)
    issuer = DevIssuer.load(cfg.dev_issuer_dir, issuer=cfg.issuer,  # type: ignore[attr-defined]
                            audience=cfg.audience)  # type: ignore[attr-defined]
    token = issuer.issue("hpf-changzhou", ["requester"], subject="bench-he", ttl_s=6 * 3600)
    keys = HeKeys.ckks()
    try:
        async with ComputeClient(address, token, keys=keys, timeout_s=3600) as client:
            await client.score(MODEL, subjects[:8])  # warm the channels and the pool
            started = time.perf_counter()
            result = await client.score(MODEL, subjects)
            return time.perf_counter() - started, result.scores
    finally:
        await gateway.stop(1)  # type: ignore[attr-defined]
        for r in partners:
            await r.stop(1)  # type: ignore[attr-defined]


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

    configure_logging("error")  # the bench runs connectors without witnesses
    workdir = args.workdir or Path(f"/tmp/pgw-bench-he-{args.subjects}")
    cfg = load_config(prepare(workdir, args.subjects))
    from connectors.datagen import load_person_ids

    subjects = load_person_ids(cfg.connector("social-security").database)[:args.subjects]
    if len(subjects) < args.subjects:
        raise SystemExit(f"only {len(subjects)} people in {workdir}; remove it to regenerate")
    model = load_models(cfg.policies)[MODEL]
    weights = [i.weight for i in model.inputs]
    cols = columns(cfg, subjects)
    n = len(subjects)
    print(f"{n:,} subjects x {len(cols)} features, model {model.label}", flush=True)

    t_pgw, pgw = asyncio.run(run_pgw(cfg, subjects))
    t_bare, bare = run_bare(cols, weights, model.bias)
    started = time.perf_counter()
    plain = np.asarray(weights) @ np.asarray(cols) + model.bias
    t_np = time.perf_counter() - started
    err_pgw = float(np.max(np.abs(np.asarray(pgw) - plain)))
    err_bare = float(np.max(np.abs(np.asarray(bare) - plain)))
    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"pgw (gRPC, 3 connectors + gateway + SDK) {t_pgw:8.2f} s   max |err| {err_pgw:.2e}")
    print(f"bare TenSEAL (one process)              {t_bare:8.2f} s   max |err| {err_bare:.2e}")
    print(f"numpy                                   {t_np:8.4f} s")
    print(f"pgw / bare TenSEAL                      {t_pgw / t_bare:8.2f} x  (target <= 1.5)")
    print(f"peak RSS: this process {me:,.0f} MiB, largest pool worker {kids:,.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
