#!/usr/bin/env python3
"""What one step of an encrypted score costs, alone, on this machine: the unit costs behind
``bench/he.py``'s totals.

    python bench/he_costs.py               # 2^20 ids for the per-id steps
    python bench/he_costs.py --ids 65536

Per 4096-slot CKKS ciphertext (N=8192, [60, 40, 40, 60], scale 2^40, as the SDK makes them):
encrypt, serialize (TenSEAL always compresses), deserialize, the gateway's weighted sum of
three, decrypt. Per list of ids: pack, SHA-256 digest, GB 11643 validation, int64 keys, the
duplicate check, a column lookup, and the audit form of a bulk entry's subjects: the set items
shipped since session 5 (``gateway.audit._set_items``, AES-256 with feed-forward) beside the
HMAC-SHA256 pseudonyms that sets held before. Synthetic ids with valid check digits; nothing is
read from a workdir.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Best of three rounds of ``repeat`` calls, in seconds per call, and the last result."""
    best, out = float("inf"), None
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(repeat):
            out = fn()
        best = min(best, (time.perf_counter() - started) / repeat)
    return best, out


def ciphertext_costs() -> list[tuple[str, float, str]]:
    import numpy as np
    import tenseal as ts

    ctx = ts.context(ts.SCHEME_TYPE.CKKS, poly_modulus_degree=8192,
                     coeff_mod_bit_sizes=[60, 40, 40, 60])
    ctx.global_scale = 2.0**40
    cols = [np.random.default_rng(i).random(4096) * 1000 for i in range(3)]
    t_enc, vec = timed(lambda: ts.ckks_vector(ctx, cols[0].tolist()), 30)
    t_ser, data = timed(vec.serialize, 30)
    t_de, _ = timed(lambda: ts.ckks_vector_from(ctx, data), 30)
    vecs = [ts.ckks_vector(ctx, c.tolist()) for c in cols]
    t_sum, out = timed(lambda: vecs[0] * 0.3 + vecs[1] * 0.5 + vecs[2] * -0.2 + 1.5, 30)
    t_rser, rdata = timed(out.serialize, 30)
    t_dec, _ = timed(out.decrypt, 30)
    return [("encrypt", t_enc, ""), ("serialize", t_ser, f"{len(data):,} B"),
            ("deserialize", t_de, ""), ("weighted sum of 3 + bias", t_sum, "3 products"),
            ("serialize result", t_rser, f"{len(rdata):,} B"), ("decrypt", t_dec, "")]


def synthetic_ids(n: int) -> list[str]:
    from gateway.validate import person_id_check_char

    out = []
    for i in range(n):
        first17 = f"320402{1950 + i % 50:04d}{1 + i % 12:02d}{1 + i % 28:02d}{i % 1000:03d}"
        out.append(first17 + person_id_check_char(first17))
    return out


def id_costs(n: int) -> list[tuple[str, float, str]]:
    import numpy as np

    from connectors.sdk._sqlite_columns import ColumnIndex
    from gateway.audit import pseudonym_blob
    from gateway.audit._set_items import set_items
    from gateway.packed_ids import (
        PackedIds,
        has_duplicates,
        id_keys,
        ids_digest,
        pack_ids,
        validate_packed_ids,
    )

    ids = synthetic_ids(n)
    data = pack_ids(ids)
    index = ColumnIndex(data, np.arange(n, dtype=np.float64), np.ones(n, dtype=bool))
    key = os.urandom(32)

    rows = [("pack", timed(lambda: pack_ids(ids), 1)[0]),
            ("SHA-256 digest", timed(lambda: ids_digest(data), 3)[0]),
            ("validate (GB 11643)", timed(lambda: validate_packed_ids(data), 3)[0]),
            ("int64 keys", timed(lambda: id_keys(data), 3)[0]),
            ("duplicate check", timed(lambda: has_duplicates(data), 3)[0]),
            ("column lookup", timed(lambda: index.lookup(data), 3)[0]),
            ("audit set items (shipped)", timed(lambda: set_items(key, data), 3)[0]),
            ("HMAC-SHA256 pseudonyms (old)", timed(lambda: pseudonym_blob(key, PackedIds(data)),
                                                   1)[0])]
    return [(name, t, f"{t / n * 1e9:,.0f} ns per id") for name, t in rows]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ids", type=int, default=1 << 20, help="ids per list (default 2^20)")
    args = parser.parse_args()
    print("per 4096-slot ciphertext:")
    for name, t, note in ciphertext_costs():
        print(f"  {name:28s} {t * 1000:8.2f} ms   {note}")
    print(f"per list of {args.ids:,} ids:")
    for name, t, note in id_costs(args.ids):
        print(f"  {name:28s} {t * 1000:8.1f} ms   {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
