"""Throughput of the privacy primitives: X25519 blinding, PSI vs openmined-psi, HMAC, CKKS.

Run: ``python bench/psi_primitives.py [--log2n 16] [--workers 2]``. openmined-psi is a
bench/test-only dependency (``pip install --no-deps openmined-psi``).

Targets for the full protocols: PSI >= 3x openmined-psi throughput, and 2^20 x 2^20 in <= 90 s
on 2 cores, i.e. about 35k blinds/s overall (3 * 2^20 blinds).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import random
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from _common import format_table, machine_description

from gateway.privacy import (
    HeKeys,
    PsiKey,
    PsiPool,
    PublicContext,
    decrypt_vector,
    encrypt_column,
    finish_cardinality,
    hash_to_point,
    hmac_items,
    match,
    prepare,
    respond_cardinality,
    weighted_sum,
)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def id_sets(n: int, seed: int = 1) -> tuple[list[bytes], list[bytes]]:
    rng = random.Random(seed)
    r = [b"%018d" % rng.randrange(10**18) for _ in range(n)]
    p = r[: n // 2] + [b"%018d" % rng.randrange(10**18) for _ in range(n - n // 2)]
    rng.shuffle(p)
    return r, p


def bench_blinding(n: int, workers: int) -> list[list[object]]:
    points = [hash_to_point(b"%d" % i) for i in range(n)]
    key = PsiKey.generate()
    single, _ = timed(lambda: key.blind(points))
    rows: list[list[object]] = [["X25519 blind, 1 process", n, f"{single:.2f}",
                                 f"{n / single:,.0f}",
                                 "1.00"]]
    with PsiPool(workers) as pool:
        pool.warm_up()
        pooled, _ = timed(lambda: key.blind_many(points, pool=pool))
    rows.append([f"X25519 blind, pool of {workers}", n, f"{pooled:.2f}", f"{n / pooled:,.0f}",
                 f"{single / pooled:.2f}"])
    return rows


def bench_psi(n: int, workers: int) -> list[list[object]]:
    import private_set_intersection.python as psi

    r_items, p_items = id_sets(n)
    r_str, p_str = [x.decode() for x in r_items], [x.decode() for x in p_items]

    def openmined() -> int:
        client, server = psi.client.CreateWithNewKey(False), psi.server.CreateWithNewKey(False)
        setup = server.CreateSetupMessage(1e-9, len(r_str), p_str, psi.DataStructure.RAW)
        response = server.ProcessRequest(client.CreateRequest(r_str))
        return int(client.GetIntersectionSize(setup, response))

    def ours(pool: PsiPool | None) -> int:
        state, blinded = prepare(r_items, pool=pool)
        double, theirs = respond_cardinality(blinded, p_items, pool=pool)
        return finish_cardinality(state, double, theirs, pool=pool)

    base, want = timed(openmined)
    single, got1 = timed(lambda: ours(None))
    with PsiPool(workers) as pool:
        pool.warm_up()
        pooled, got2 = timed(lambda: ours(pool))
    assert want == got1 == got2 == n // 2, (want, got1, got2)
    return [["openmined-psi cardinality (C++, P-256)", n, f"{base:.2f}", f"{n / base:,.0f}",
             "1.00"],
            ["pgw ecdh-psi cardinality, 1 process", n, f"{single:.2f}", f"{n / single:,.0f}",
             f"{base / single:.2f}"],
            [f"pgw ecdh-psi cardinality, pool of {workers}", n, f"{pooled:.2f}",
             f"{n / pooled:,.0f}", f"{base / pooled:.2f}"]]


def bench_hmac(n: int) -> list[list[object]]:
    r_items, p_items = id_sets(n)
    key = bytes(range(32))

    def baseline() -> int:
        mine = [hmac.new(key, x, hashlib.sha256).digest() for x in r_items]
        theirs = {hmac.new(key, y, hashlib.sha256).digest() for y in p_items}
        return sum(m in theirs for m in mine)

    base, want = timed(baseline)
    ours, flags = timed(lambda: match(hmac_items(key, r_items), hmac_items(key, p_items)))
    assert sum(flags) == want
    return [["hmac.new + set (baseline), 2 sides", 2 * n, f"{base:.2f}", f"{2 * n / base:,.0f}",
             "1.00"],
            ["pgw hmac_items + match, 2 sides", 2 * n, f"{ours:.2f}", f"{2 * n / ours:,.0f}",
             f"{base / ours:.2f}"]]


def bench_ckks(n: int) -> list[list[object]]:
    rng = np.random.default_rng(2)
    a, b = rng.uniform(0, 1e4, n), rng.uniform(-1, 1, n)
    keys = HeKeys.ckks()
    ctx = PublicContext.load(keys.public_material())
    enc, (ca, cb) = timed(lambda: (encrypt_column(ctx, a), encrypt_column(ctx, b)))
    ws, scored = timed(lambda: weighted_sum(ctx, [ca, cb], [0.5, -3.0], 2.0, count=n))
    dec, got = timed(lambda: decrypt_vector(keys, scored, n))
    plain, want = timed(lambda: 0.5 * a - 3.0 * b + 2.0)
    err = float(np.abs(np.asarray(got) - want).max())
    he = enc + ws + dec
    return [[f"CKKS encrypt 2 columns ({len(ca)} ct each)", n, f"{enc:.2f}", f"{2 * n / enc:,.0f}",
             ""],
            ["CKKS weighted sum", n, f"{ws:.2f}", f"{n / ws:,.0f}", ""],
            [f"CKKS decrypt (max err {err:.1e})", n, f"{dec:.2f}", f"{n / dec:,.0f}", ""],
            ["numpy weighted sum", n, f"{plain:.4f}", f"{n / plain:,.0f}",
             f"HE is {he / plain:,.0f}x slower"]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log2n", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    n = 1 << args.log2n
    print(machine_description())
    rows = bench_blinding(n, args.workers) + bench_psi(n, args.workers) + bench_hmac(n)
    rows += bench_ckks(n)
    print(format_table(["what", "items", "seconds", "items/s", "ratio"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
