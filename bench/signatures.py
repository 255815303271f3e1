#!/usr/bin/env python3
"""Ed25519 on the hot path: libsodium (PyNaCl, what pgw signs specs and checkpoints with)
against ``cryptography``'s OpenSSL Ed25519, same keys, same messages, same run.

    python bench/signatures.py                 # 20,000 operations each, 400-byte messages
    python bench/signatures.py --count 50000 --size 1000

Each query signs one ReleaseSpec per partner at the gateway and verifies it at the connector,
so these per-operation costs multiply by three on every loan query (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable

from _common import format_table, machine_description
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.ed25519 import Signer, Verifier


def per_op_us(fn: Callable[[bytes], object], messages: list[bytes]) -> float:
    start = time.perf_counter()
    for message in messages:
        fn(message)
    return (time.perf_counter() - start) / len(messages) * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench/signatures.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=20_000, help="operations per row")
    parser.add_argument("--size", type=int, default=400,
                        help="message bytes (a one-subject loan spec is about 400)")
    args = parser.parse_args()
    key = Ed25519PrivateKey.generate()
    public = key.public_key()
    signer, verifier = Signer(key), Verifier(public)
    messages = [os.urandom(args.size) for _ in range(args.count)]
    signatures = {m: key.sign(m) for m in messages}
    if any(signer.sign(m) != s for m, s in list(signatures.items())[:100]):
        raise SystemExit("libsodium and OpenSSL signatures differ: Ed25519 must be deterministic")
    rows = []
    base_sign = per_op_us(key.sign, messages)
    base_verify = per_op_us(lambda m: public.verify(signatures[m], m), messages)
    fast_sign = per_op_us(signer.sign, messages)
    fast_verify = per_op_us(lambda m: verifier.verify(signatures[m], m) or sys.exit(1), messages)
    rows.append(["sign", f"{base_sign:.1f}", f"{fast_sign:.1f}", f"{base_sign / fast_sign:.2f}x"])
    rows.append(["verify", f"{base_verify:.1f}", f"{fast_verify:.1f}",
                 f"{base_verify / fast_verify:.2f}x"])
    print(f"machine: {machine_description()}; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{args.count:,} operations per row, {args.size}-byte messages\n")
    print(format_table(["operation", "cryptography us/op", "libsodium us/op", "speed-up"], rows,
                       left=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
