"""``pgw join``: match the requester's own list of people against a partner's set, privately.

The CSV is read and validated here (GB 11643-1999; errors name the CSV line, never the id);
the PSI scalar, HMAC key and HE secret key are made in this process and never leave it.
A progress bar goes to stderr; the answer to stdout (a table) or ``--out`` (CSV).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc

from gateway.cli._common import (
    CliError,
    add_config,
    add_credentials,
    config_of,
    requester_ca,
    rpc_failure,
    table,
    token_for,
)
from gateway.client import JoinClient, JoinResult
from gateway.config import Config
from gateway.validate import normalize_person_id

MODES = ("ecdh-psi", "keyed-hash")
OUTPUTS = ("membership", "cardinality", "intersection-sum")


def register(sub: Any) -> None:
    p = sub.add_parser(
        "join", help="private set join against a partner (PSI or keyed hash)",
        description="Match your own list of people against a partner's set without revealing "
        "either list: membership of your own items, the match count, or the sum of a granted "
        "partner value over the matches (decrypted only here).")
    add_config(p)
    add_credentials(p)
    p.add_argument("--gateway", metavar="HOST:PORT", help="default: [gateway] listen")
    p.add_argument("--partner", required=True, help="e.g. social-security")
    p.add_argument("--purpose", required=True, help="e.g. fraud-detection")
    p.add_argument("--mode", choices=MODES, default="ecdh-psi")
    p.add_argument("--output", choices=OUTPUTS, default="membership")
    p.add_argument("--items", type=Path, required=True, metavar="CSV",
                   help="CSV with a header row; one person per line")
    p.add_argument("--column", default="id", help="the CSV column holding the ids (default id)")
    p.add_argument("--value-field", default="", metavar="FIELD",
                   help="intersection-sum: the partner field to add (default: the granted one)")
    p.add_argument("--out", type=Path, metavar="CSV",
                   help="membership: write the input rows plus a `match` column here")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run_join)


def read_items(path: Path, column: str) -> tuple[list[str], list[dict[str, str]], list[str]]:
    """(ids, rows, header) from a CSV; CliError naming the line for any bad id."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = list(reader.fieldnames or [])
            if column not in header:
                raise CliError(f"{path}: no column {column!r} (columns: {', '.join(header)})",
                               hint="name the id column with --column")
            ids, rows, problems = [], [], []
            for row in reader:
                try:
                    ids.append(normalize_person_id((row.get(column) or "").strip()))
                    rows.append(row)
                except ValueError as exc:
                    problems.append(f"{path}:{reader.line_num}: not a GB 11643-1999 id ({exc})")
    except OSError as exc:
        raise CliError(f"{path}: cannot read ({exc.strerror})") from None
    except csv.Error as exc:
        raise CliError(f"{path}: not a CSV file ({exc})") from None
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise CliError("\n  ".join(problems[:5]) + more)
    if not ids:
        raise CliError(f"{path}: no ids in column {column!r}")
    return ids, rows, header


class ProgressBar:
    """One line on stderr, redrawn at most 10 times a second."""

    def __init__(self, enabled: bool) -> None:
        self.enabled, self._last = enabled and sys.stderr.isatty(), 0.0

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled or (time.monotonic() - self._last < 0.1 and done < total):
            return
        self._last = time.monotonic()
        width = 30
        filled = width * done // total if total else width
        print(f"\r{stage:<14} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}",
              end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.enabled:
            print(file=sys.stderr, flush=True)


def run_join(args: argparse.Namespace) -> int:
    cfg = config_of(args)
    ids, rows, header = read_items(args.items, args.column)
    token = token_for(cfg, args)
    bar = ProgressBar(not args.quiet)

    async def go() -> JoinResult:
        async with JoinClient(args.gateway or cfg.listen, token,
                              ca=requester_ca(cfg)) as client:
            return await client.join(args.partner, args.purpose, args.mode, args.output, ids,
                                     value_field=args.value_field, progress=bar)
    try:
        result = asyncio.run(go())
    except grpc.RpcError as err:
        raise rpc_failure(err) from None
    finally:
        bar.close()
    print(render(result, args.items.name))
    if args.out and result.membership is not None:
        with args.out.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=[*header, "match"])
            writer.writeheader()
            for row, hit in zip(rows, result.membership, strict=True):
                writer.writerow({**row, "match": "yes" if hit else "no"})
        print(f"wrote {args.out}", file=sys.stderr)
    print(f"job {result.job_id}: audit leaf {result.receipt.leaf_index} in a log of "
          f"{result.receipt.tree_size}", file=sys.stderr)
    return 0


def render(result: JoinResult, source: str = "items") -> str:
    lines = [f"{result.mode} {result.output}: {result.requester_count} distinct items of "
             f"yours against {result.partner_count} of the partner's"]
    if result.membership is not None:
        hits = [i for i, hit in enumerate(result.membership, start=2) if hit]
        lines.append(f"matches: {len(hits)}")
        lines.append(table(["line in " + source, "match"], [[line, "yes"] for line in hits]))
    elif result.total is not None:
        lines.append(f"matches: {result.match_count}; sum over the matches: {result.total:.2f}")
    else:
        lines.append(f"matches: {result.match_count}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- demo hook

async def run_join_scenario(cfg: Config, address: str, say: Callable[[str], None]) -> None:
    """The fraud cross-check (DESIGN.md, founding scenario), for ``pgw demo``.

    HPF's list of 200 people who withdrew on grounds of unemployment, matched against social
    security's people currently contributing: membership (which of HPF's own claimants still
    contribute), then the count alone, then the sum of their contribution base.
    """
    from gateway.cli._scenario import hpf_token

    token = hpf_token(cfg, "fraud-analyst-03")
    claimants = _claimants(cfg.connector("social-security").database)
    say("\n== 8. fraud cross-check: HPF's 200 unemployment-ground withdrawals against people "
        "currently contributing (private join; the gateway sees only blinded points)")
    async with JoinClient(address, token) as client:
        try:
            member = await client.join("social-security", "fraud-detection", "ecdh-psi",
                                       "membership", claimants)
        except grpc.RpcError as err:
            say("   " + str(rpc_failure(err)).replace("\n", "\n   "))
            say("   (joins are bounded by limits.max_subjects_per_request; see docs/privacy.md)")
            return
        rows = [i + 1 for i, hit in enumerate(member.membership or []) if hit]
        say(f"   membership (ecdh-psi): {len(rows)} of {len(claimants)} claimants are still "
            f"contributing; their rows in HPF's list:")
        say("   " + ", ".join(map(str, rows)))
        say(f"   audited as leaf {member.receipt.leaf_index}; HPF learned nothing about the "
            f"bureau's other {member.partner_count - len(rows)} contributors")
        card = await client.join("social-security", "fraud-detection", "ecdh-psi",
                                 "cardinality", claimants)
        say(f"   cardinality only: {card.match_count} matches (no list)")
        summed = await client.join("social-security", "fraud-detection", "ecdh-psi",
                                   "intersection-sum", claimants)
        say(f"   intersection-sum: contribution base over the {summed.match_count} matches = "
            f"{summed.total:,.2f} CNY/month (the gateway added ciphertexts; only HPF decrypted)")


def _claimants(db: Path) -> list[str]:
    """200 ids: 120 from social security's database (active or not) and 80 it never saw."""
    from gateway.validate import person_id_check_char

    uri = db.resolve().as_uri() + "?mode=ro"
    conn = sqlite3.connect(uri, uri=True)
    try:
        known = [r[0] for r in conn.execute(
            'SELECT person_id FROM "social_security" ORDER BY person_id LIMIT 120')]
    finally:
        conn.close()
    strangers = []
    for n in range(80):
        first = f"320499{1970 + n % 30}0{1 + n % 9}1{n % 10}{n:03d}"
        strangers.append(first + person_id_check_char(first))
    out = known + strangers
    return [out[(i * 37) % len(out)] for i in range(len(out))]  # interleaved, deterministic
