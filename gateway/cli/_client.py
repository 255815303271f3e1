"""Requester commands: ``query`` and ``explain``."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import grpc

from connectors.sdk._values import from_value
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
from gateway.client import GatewayClient, parse_fields
from gateway.pb.pgw.v1 import gateway_pb2


def register(sub: Any) -> None:
    q = sub.add_parser("query", help="run an authorized query",
                       description="Ask the gateway for fields about people, for a purpose. "
                       "Fields not granted by an agreement refuse the whole request.")
    _common(q)
    q.add_argument("--subject", action="append", default=[], metavar="ID",
                   help="a GB 11643 resident id (repeat)")
    q.add_argument("--subjects-file", type=Path, metavar="FILE", help="one id per line")
    q.add_argument("--format", choices=["table", "json"], default="table")
    q.add_argument("--receipt", type=Path, metavar="FILE",
                   help="save the audit receipt (verify with `pgw audit verify-receipt FILE`)")
    q.set_defaults(run=run_query)
    e = sub.add_parser("explain", help="dry-run a query: the decision and a reason per field",
                       description="Answer the decision a query would get, without data.")
    _common(e)
    e.add_argument("--subjects", type=int, default=1, metavar="N", help="subject count")
    e.set_defaults(run=run_explain)


def _common(p: argparse.ArgumentParser) -> None:
    add_config(p)
    add_credentials(p)
    p.add_argument("--gateway", metavar="HOST:PORT", help="default: [gateway] listen")
    p.add_argument("--purpose", required=True, help="e.g. loan-eligibility")
    p.add_argument("--field", action="append", required=True, metavar="PARTNER.FIELD",
                   help="e.g. education.highest_degree (repeat)")


def _call(args: argparse.Namespace, method: str, arguments: Any) -> Any:
    """Call ``method`` with ``(purpose, *arguments(fields))`` and map failures to CliError."""
    cfg = config_of(args)
    try:
        fields = parse_fields(args.field)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    token = token_for(cfg, args)

    async def go() -> Any:
        async with GatewayClient(args.gateway or cfg.listen, token,
                                 ca=requester_ca(cfg)) as client:
            return await getattr(client, method)(args.purpose, *arguments(fields))
    try:
        return asyncio.run(go())
    except grpc.RpcError as err:
        raise rpc_failure(err) from None


def run_query(args: argparse.Namespace) -> int:
    subjects = list(args.subject)
    if args.subjects_file:
        subjects += [s.strip() for s in args.subjects_file.read_text().splitlines() if s.strip()]
    response = _call(args, "query", lambda fields: (subjects, fields))
    if args.format == "json":
        print(json.dumps(query_rows(response), ensure_ascii=False, indent=1))
    else:
        print(render_query(response))
    if args.receipt:
        from gateway.receipts import save_receipt

        save_receipt(response.receipt, args.receipt)
    print(f"request {response.request_id}: audit leaf {response.receipt.leaf_index} "
          f"in a log of {response.receipt.tree_size}", file=sys.stderr)
    return 0


def query_rows(response: gateway_pb2.QueryResponse) -> list[dict[str, Any]]:
    rows = []
    for result in response.results:
        row: dict[str, Any] = {"#": result.subject_index}
        for v in result.values:
            row[f"{v.partner}.{v.field}"] = from_value(v.value) if v.HasField("value") else None
        for partner in result.not_found:
            row[f"{partner}"] = "no record"
        rows.append(row)
    return rows


def render_query(response: gateway_pb2.QueryResponse) -> str:
    rows = query_rows(response)
    headers: list[str] = []
    for row in rows:
        headers += [k for k in row if k not in headers]
    return table(headers, [[row.get(h, "") for h in headers] for row in rows])


def run_explain(args: argparse.Namespace) -> int:
    response = _call(args, "explain", lambda fields: (fields, args.subjects))
    print(render_explain(response))
    return 0 if response.verdict == gateway_pb2.VERDICT_ALLOW else 3


def render_explain(response: gateway_pb2.ExplainResponse) -> str:
    verdict = gateway_pb2.Verdict.Name(response.verdict).removeprefix("VERDICT_")
    lines = [f"decision: {verdict} ({response.reason})",
             table(["partner", "field", "verdict", "reason"],
                   [[f.partner, f.field, gateway_pb2.Verdict.Name(f.verdict).removeprefix(
                       "VERDICT_"), f.reason] for f in response.fields])]
    return "\n".join(lines)
