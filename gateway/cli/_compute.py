"""Requester commands for encrypted compute: ``pgw compute score`` and ``pgw compute aggregate``.

The CKKS keys are made here, in the requester's process; only the public material goes to the
gateway, and the results are decrypted here. ``run_compute_scenarios`` is the demo's hook.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import sys
from collections.abc import Callable, Sequence
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
from gateway.client import AggregateResult, ComputeClient, ScoreResult
from gateway.config import Config


def register(sub: Any) -> None:
    p = sub.add_parser("compute", help="encrypted compute: loan risk scores, cohort statistics",
                       description="Compute on partners' data without seeing it: inputs are "
                       "encrypted at each partner under keys made here, the gateway evaluates "
                       "on ciphertexts, and only the result is decrypted here.")
    cmds = p.add_subparsers(dest="compute_command", metavar="COMMAND", required=True)
    s = cmds.add_parser("score", help="score subjects with an approved linear model",
                        description="Score people with an approved model (its weights are "
                        "fixed by the model file, never chosen here). A subject a partner does "
                        "not hold counts as 0 for that input and is flagged.")
    _common(s, "loan-risk-scoring")
    s.add_argument("--model", required=True, help="approved model id, e.g. hpf-loan-risk")
    s.add_argument("--subject", action="append", default=[], metavar="ID",
                   help="a GB 11643 resident id (repeat)")
    s.add_argument("--subjects-file", type=Path, metavar="FILE",
                   help="ids, one per line (or the first column of a CSV)")
    s.add_argument("--format", choices=["table", "csv"], default="table")
    s.set_defaults(run=run_score)
    a = cmds.add_parser("aggregate", help="sum, mean or count over a partner-defined cohort",
                        description="An aggregate of one field over the people a partner "
                        "selects by its own attribute; refused below the agreement's min_k.")
    _common(a, "statistics")
    a.add_argument("--partner", required=True, help="e.g. social-security")
    a.add_argument("--field", required=True, help="e.g. contribution_base")
    a.add_argument("--op", required=True, choices=["sum", "mean", "count"])
    a.add_argument("--cohort", required=True, metavar="ATTRIBUTE=VALUE",
                   help="e.g. district_code=320402")
    a.set_defaults(run=run_aggregate)


def _common(p: argparse.ArgumentParser, purpose: str) -> None:
    add_config(p)
    add_credentials(p)
    p.add_argument("--gateway", metavar="HOST:PORT", help="default: [gateway] listen")
    p.add_argument("--purpose", default=purpose, help=f"declared purpose (default {purpose})")


def _run(args: argparse.Namespace, call: Callable[[ComputeClient], Any]) -> Any:
    cfg = config_of(args)
    token = token_for(cfg, args)

    async def go() -> Any:
        async with ComputeClient(args.gateway or cfg.listen, token,
                                 ca=requester_ca(cfg)) as client:
            return await call(client)
    try:
        return asyncio.run(go())
    except grpc.RpcError as err:
        raise rpc_failure(err) from None


def read_subjects(inline: Sequence[str], path: Path | None) -> list[str]:
    subjects = list(inline)
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise CliError(f"cannot read {path}: {exc.strerror}") from None
        for row in csv.reader(io.StringIO(text)):
            if row and row[0].strip() and not row[0].startswith("#"):
                subjects.append(row[0].strip())
    if not subjects:
        raise CliError("no subjects", hint="pass --subject ID (repeat) or --subjects-file FILE")
    return subjects


def score_rows(subjects: Sequence[str], result: ScoreResult) -> list[list[str]]:
    return [[s, f"{score:.4f}", "yes" if result.complete(i) else
             "no: " + ",".join(result.missing(i)) + " counted as 0"]
            for i, (s, score) in enumerate(zip(subjects, result.scores, strict=True))]


HEADERS = ["subject", "score", "all inputs present"]


def run_score(args: argparse.Namespace) -> int:
    subjects = read_subjects(args.subject, args.subjects_file)
    result: ScoreResult = _run(args, lambda c: c.score(args.model, subjects,
                                                       purpose=args.purpose))
    rows = score_rows(subjects, result)
    if args.format == "csv":
        out = csv.writer(sys.stdout)
        out.writerow(HEADERS)
        out.writerows(rows)
    else:
        print(table(HEADERS, rows))
    print(f"model {result.model} v{result.model_version}; request {result.request_id}: audit "
          f"leaf {result.receipt.leaf_index} in a log of {result.receipt.tree_size}",
          file=sys.stderr)
    return 0


def parse_cohort(text: str) -> tuple[str, str]:
    attribute, sep, value = text.partition("=")
    if not sep or not attribute.strip() or not value.strip():
        raise CliError(f"--cohort {text!r}: want ATTRIBUTE=VALUE, e.g. district_code=320402")
    return attribute.strip(), value.strip()


def render_aggregate(args: Any, result: AggregateResult) -> str:
    count = "withheld" if result.cohort_count is None else str(result.cohort_count)
    value = f"{result.value:.0f}" if result.op == "count" else f"{result.value:.2f}"
    return table(["partner.field", "op", "cohort", "value", "cohort size"],
                 [[f"{args.partner}.{args.field}", result.op, args.cohort, value, count]])


def run_aggregate(args: argparse.Namespace) -> int:
    attribute, value = parse_cohort(args.cohort)
    result: AggregateResult = _run(args, lambda c: c.aggregate(
        args.partner, args.field, args.op, attribute, value, purpose=args.purpose))
    print(render_aggregate(args, result))
    print(f"request {result.request_id}: audit leaf {result.receipt.leaf_index} in a log of "
          f"{result.receipt.tree_size}", file=sys.stderr)
    return 0


async def run_compute_scenarios(cfg: Config, address: str, say: Callable[[str], None]) -> None:
    """The demo's encrypted-compute part: 5 risk scores, a cohort mean, a refused small cohort."""
    from gateway.cli._scenario import applicants, hpf_token

    token = hpf_token(cfg, "risk-officer-03")
    ids = applicants(cfg)
    async with ComputeClient(address, token) as client:
        say("\n== 6. encrypted compute: loan risk score with the approved model hpf-loan-risk")
        say("   (bank income, social-security months and degree level are encrypted at each")
        say("    partner under HPF's key; the gateway adds them on ciphertexts; HPF decrypts")
        say("    only the score and never sees an input)")
        result = await client.score("hpf-loan-risk", ids)
        say(_indent(table(HEADERS, score_rows(ids, result))))
        say(f"   audited as leaf {result.receipt.leaf_index} (model {result.model} "
            f"v{result.model_version})")
        say("\n== 7. cohort statistics: mean contribution base in district 320402 (min k = 10)")
        agg = await client.aggregate("social-security", "contribution_base", "mean",
                                     "district_code", "320402")
        shown = argparse.Namespace(partner="social-security", field="contribution_base",
                                   cohort="district_code=320402")
        say(_indent(render_aggregate(shown, agg)))
        small = await _smallest_employer(cfg)
        say("\n== 7b. refused: the same mean over an employer with fewer than 10 people")
        try:
            await client.aggregate("social-security", "contribution_base", "mean",
                                   "employer_code", small)
        except grpc.RpcError as err:
            say(_indent(str(rpc_failure(err))))
        else:
            say("   UNEXPECTED: the small cohort was released")


async def _smallest_employer(cfg: Config) -> str:
    """An employer code with fewer than 10 people (read locally for the demo only)."""
    import sqlite3

    def read() -> str:
        uri = Path(cfg.connector("social-security").database).resolve().as_uri() + "?mode=ro"
        conn = sqlite3.connect(uri, uri=True)
        try:
            row = conn.execute('SELECT employer_code FROM "social_security" GROUP BY 1 '
                               "HAVING count(*) < 10 ORDER BY count(*) LIMIT 1").fetchone()
        finally:
            conn.close()
        return str(row[0]) if row else "913204000000000000"
    return await asyncio.to_thread(read)


def _indent(text: str) -> str:
    return "\n".join("   " + line for line in text.splitlines())
