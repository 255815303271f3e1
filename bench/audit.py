#!/usr/bin/env python3
"""Benchmark the durable audit log: group commit, proofs, full verification, SM3 vs SHA-256.

    python bench/audit.py                      # full run (10**6 entries)
    python bench/audit.py --entries 100000     # quick run
    python bench/audit.py --pg-dsn postgresql://postgres@127.0.0.1:5432/test

Measures, in one run and on the same store:

1. durable appends/s through :class:`AuditLog` with ``--writers`` concurrent tasks (group commit,
   one signed checkpoint per batch) against commit-per-entry (``append_batch([entry])`` in a
   loop), and the ratio; on SQLite always and on PostgreSQL with ``--pg-dsn``;
2. full verification: read ``--entries`` entries back from a SQLite store, recompute the RFC 9162
   root and check it against the stored signed checkpoint;
3. inclusion- and consistency-proof generation on that in-memory tree;
4. leaf-hash throughput of SM3 and SHA-256 over real entry sizes.

Entries are synthetic :class:`AuditEntry` encodings (no personal data).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from gateway.audit._checkpoint import Checkpoint
from gateway.audit._entry import AgreementRef, AuditEntry, format_time, subject_pseudonym
from gateway.audit._hasher import get_hasher
from gateway.audit._log import AuditLog
from gateway.audit._note import NoteSigner, open_note, sign_note
from gateway.audit._store import iter_entries, open_store
from gateway.audit._tree import MerkleTree

ORIGIN = "pgw.bench/audit"
_MARK = "req-0000000000"


def entry_maker() -> Callable[[int], bytes]:
    """Fast synthetic entries: one real encoded entry with its request id renumbered."""
    template = AuditEntry(
        time=format_time(datetime(2025, 1, 1, tzinfo=UTC)), request_id=_MARK, kind="query",
        requester_org="hpf-bench-centre", requester_subject="officer-bench", role="requester",
        purpose="loan-review", agreements=(AgreementRef("agr-bench", 1, "cd" * 32),),
        partners=("social_security", "bank"),
        released=(("social_security", "contribution_months", "generalize"),
                  ("bank", "income_avg_12m", "predicate")),
        subject_count=1, subject_pseudonyms=(subject_pseudonym(bytes(32), "syn-bench"),),
        decision="allow", reason="granted", response_digest="ef" * 32).encode()
    mark = _MARK.encode()
    return lambda n: template.replace(mark, f"req-{n:010d}".encode())


@contextmanager
def pg_schema(base: str) -> Iterator[str]:
    """A throw-away schema on ``base``; yields a DSN whose search_path points at it."""
    import psycopg

    schema = f"pgw_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}".encode())
    try:
        yield f"{base}{'&' if '?' in base else '?'}options={quote(f'-csearch_path={schema}')}"
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE".encode())


async def _group_commit(dsn: str, make: Callable[[int], bytes], total: int,
                        writers: int) -> tuple[float, int]:
    """Appends/s with ``writers`` concurrent tasks, and how many checkpoints (batches) it took."""
    log = await AuditLog.open(dsn, "sha256", ORIGIN, NoteSigner.generate("pgw.bench-log"))
    per_writer = total // writers

    sizes: set[int] = set()

    async def writer(w: int) -> None:
        for i in range(per_writer):
            sizes.add((await log.append(make(w * per_writer + i))).size)

    start = time.perf_counter()
    await asyncio.gather(*(writer(w) for w in range(writers)))
    elapsed = time.perf_counter() - start
    await log.aclose()
    return per_writer * writers / elapsed, len(sizes)


def bench_appends(dsn: str, make: Callable[[int], bytes], args: argparse.Namespace) -> list[
        tuple[str, str]]:
    """Group commit through AuditLog vs commit-per-entry on the same store."""
    group_rate, batches = asyncio.run(_group_commit(dsn, make, args.appends, args.writers))
    store = open_store(dsn)
    try:
        start = time.perf_counter()
        for i in range(args.per_entry):
            store.append_batch([make(10**9 + i)])
        single_rate = args.per_entry / (time.perf_counter() - start)
    finally:
        store.close()
    return [(f"group commit, {args.writers} writers (appends/s)",
             f"{group_rate:,.0f} ({args.appends / batches:.0f} entries per commit)"),
            ("commit per entry (appends/s)", f"{single_rate:,.0f}"),
            ("ratio group / per-entry", f"{group_rate / single_rate:.1f}x")]


def bench_verify_and_proofs(path: Path, make: Callable[[int], bytes],
                            args: argparse.Namespace) -> list[tuple[str, str]]:
    """Fill a SQLite store, verify it end to end, then time proofs on the rebuilt tree."""
    signer = NoteSigner.generate("pgw.bench-log")
    hasher = get_hasher(args.hash)
    store = open_store(str(path))
    store.create(args.hash, ORIGIN)
    start = time.perf_counter()
    builder = MerkleTree(hasher)
    for base in range(0, args.entries, 10_000):
        chunk = [make(n) for n in range(base, min(base + 10_000, args.entries))]
        store.append_batch(chunk)
        builder.extend(hasher.leaf(e) for e in chunk)
    note = sign_note(Checkpoint(ORIGIN, builder.size, builder.root()).body(), [signer])
    store.save_checkpoint(builder.size, note)
    store.close()
    fill = time.perf_counter() - start

    start = time.perf_counter()  # what an officer's verifier does: read, hash, compare
    store = open_store(str(path))
    size, stored_note = store.latest_checkpoint() or (0, "")
    checkpoint = Checkpoint.parse(open_note(stored_note, [signer.verifier()]).body)
    tree = MerkleTree(hasher)
    tree.extend(hasher.leaf(e) for _, e in iter_entries(store, 0, size))
    ok = tree.root() == checkpoint.root and tree.size == checkpoint.size
    store.close()
    verify = time.perf_counter() - start

    rng = random.Random(1)
    samples = []
    for _ in range(args.proofs):
        index = rng.randrange(tree.size)
        t0 = time.perf_counter()
        tree.inclusion_proof(index, tree.size)
        samples.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    for _ in range(args.proofs):
        tree.consistency_proof(rng.randrange(1, tree.size), tree.size)
    consistency = (time.perf_counter() - t0) / args.proofs
    samples.sort()
    mean_us, p99_us = statistics.fmean(samples) * 1e6, samples[len(samples) * 99 // 100] * 1e6
    return [(f"fill SQLite store, {args.entries:,} entries (s)", f"{fill:.2f}"),
            (f"full verification of {args.entries:,} {args.hash} entries (s)",
             f"{verify:.2f} ({'root matches' if ok else 'ROOT MISMATCH'})"),
            (f"inclusion proof at {tree.size:,} (mean / p99 µs)",
             f"{mean_us:.1f} / {p99_us:.1f}"),
            (f"consistency proof at {tree.size:,} (mean µs)", f"{consistency * 1e6:.1f}")]


def bench_hashes(make: Callable[[int], bytes], count: int) -> list[tuple[str, str]]:
    entries = [make(n) for n in range(count)]
    size = sum(map(len, entries)) / count
    rows = []
    for name in ("sha256", "sm3"):
        leaf = get_hasher(name).leaf
        start = time.perf_counter()
        for entry in entries:
            leaf(entry)
        rate = count / (time.perf_counter() - start)
        rows.append((f"{name} leaf hashes/s ({size:.0f}-byte entries)",
                     f"{rate:,.0f} ({rate * size / 1e6:.0f} MB/s)"))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=1_000_000,
                        help="entries for verification and proofs (default 10**6)")
    parser.add_argument("--appends", type=int, default=20_000,
                        help="appends through AuditLog (group commit)")
    parser.add_argument("--writers", type=int, default=64, help="concurrent appending tasks")
    parser.add_argument("--per-entry", type=int, default=2_000,
                        help="appends for the commit-per-entry baseline")
    parser.add_argument("--hash", choices=("sha256", "sm3"), default="sha256",
                        help="hash profile of the verification store")
    parser.add_argument("--proofs", type=int, default=2_000, help="proofs to time")
    parser.add_argument("--hashes", type=int, default=200_000, help="entries to hash per profile")
    parser.add_argument("--pg-dsn", default=os.environ.get("PGW_BENCH_PG_DSN"),
                        help="also bench PostgreSQL (a throw-away schema is made and dropped)")
    parser.add_argument("--dir", type=Path, default=None, help="where to put SQLite files")
    args = parser.parse_args(argv)
    make = entry_maker()
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        rows += [(f"SQLite: {k}", v) for k, v in
                 bench_appends(f"sqlite://{tmp}/appends.db", make, args)]
        if args.pg_dsn:
            with pg_schema(args.pg_dsn) as dsn:
                rows += [(f"PostgreSQL: {k}", v) for k, v in bench_appends(dsn, make, args)]
        rows += bench_verify_and_proofs(Path(tmp) / "verify.db", make, args)
    rows += bench_hashes(make, args.hashes)
    width = max(len(k) for k, _ in rows)
    print(f"{'measure':<{width}}  value")
    print(f"{'-' * width}  {'-' * 30}")
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    main()
