"""``pgw demo``: the loan-eligibility scenario end to end on embedded defaults.

Three connectors and the gateway start in-process on loopback ephemeral ports; the HPF centre
asks, under the ``loan-eligibility`` agreements, only for what its rules need; two requests that
ask for more are refused; the audit log is then verified from storage.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
import tempfile
from pathlib import Path
from typing import Any

import grpc

from gateway.cli._client import render_explain, render_query
from gateway.cli._common import CliError, rpc_failure, table
from gateway.cli._scenario import ORG, applicants, hpf_token
from gateway.config import Config, load_config

LOAN_FIELDS = [("social-security", "contribution_months"), ("social-security", "insured_status"),
               ("education", "highest_degree"), ("bank", "income_avg_12m"),
               ("bank", "overdue_flag")]


def register(sub: Any) -> None:
    p = sub.add_parser("demo", help="run the end-to-end loan-eligibility demo",
                       description="Generate data, start three connectors and the gateway on "
                       "loopback, run the HPF loan-eligibility scenario, show two refusals and "
                       "verify the audit log. With --workdir the files stay for later commands.")
    p.add_argument("--workdir", type=Path, metavar="DIR",
                   help="keep config, keys, data and audit log here (reused if it exists)")
    p.add_argument("--people", type=int, default=100_000,
                   help="synthetic people when creating the workdir (default 100000)")
    p.set_defaults(run=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    from gateway.logs import configure_logging

    configure_logging("error")
    try:
        if args.workdir:
            return asyncio.run(demo(args.workdir, args.people))
        with tempfile.TemporaryDirectory(prefix="pgw-demo-") as tmp:
            return asyncio.run(demo(Path(tmp), args.people, keep=False))
    except grpc.RpcError as err:
        raise rpc_failure(err) from None
    except OSError as exc:
        raise CliError(f"demo failed: {exc}") from None


def say(text: str = "") -> None:
    print(text, flush=True)


def prepare(workdir: Path, people: int) -> Config:
    from gateway.workdir import init_workdir

    config = workdir / "pgw.toml"
    if config.exists():
        say(f"== reusing {config}")
    else:
        say(f"== 1. generating {people} synthetic people for the partners in {workdir}")
        init_workdir(workdir, people=people, seed=20261125)
    return load_config(config)


async def demo(workdir: Path, people: int, keep: bool = True) -> int:
    from gateway.server import start_gateway, start_partner

    cfg = prepare(workdir, people)
    say(f"== 2. starting {len(cfg.connectors)} connectors and the gateway on loopback "
        "ephemeral ports")
    partners = {p: await start_partner(cfg, p, listen="127.0.0.1:0") for p in cfg.connectors}
    live = dataclasses.replace(cfg, connectors={
        p: dataclasses.replace(c, address=f"127.0.0.1:{partners[p].port}")
        for p, c in cfg.connectors.items()})
    gateway = await start_gateway(live, listen="127.0.0.1:0")
    for p, r in partners.items():
        say(f"   connector {p:<16} 127.0.0.1:{r.port}")
    say(f"   gateway                    127.0.0.1:{gateway.port}")
    try:
        await scenario(live, f"127.0.0.1:{gateway.port}")
    finally:
        await gateway.stop(1)
        for r in partners.values():
            await r.stop(1)
    say("\n== 9. audit check: the whole log recomputed from storage, signatures and witnesses")
    from gateway.cli._audit import verify_and_report

    ok = verify_and_report(cfg)
    if keep:
        say(f"\nfiles kept in {cfg.path.parent}; try:\n"
            f"  pgw audit verify --config {cfg.path}\n"
            f"  pgw connector serve bank --config {cfg.path} &  (and the others), then\n"
            f"  pgw gateway serve --config {cfg.path} &\n"
            f"  pgw query --config {cfg.path} --org {ORG} --role requester "
            "--purpose loan-eligibility --field education.highest_degree --subject ID")
    return 0 if ok else 1


async def scenario(cfg: Config, address: str) -> None:
    from gateway.client import GatewayClient

    token = hpf_token(cfg, "loan-officer-07")
    ids = applicants(cfg)
    async with GatewayClient(address, token) as client:
        say("\n== 3. loan eligibility: what the HPF centre learns about 5 applicants")
        say("   (booleans for contribution months >= 12 and currently insured; highest degree;")
        say("    average income as a band and the overdue flag; never raw income or card number)")
        plan = await client.explain("loan-eligibility", LOAN_FIELDS, len(ids))
        say(_indent(table(["field", "released as"],
                          [[f"{f.partner}.{f.field}", f.reason.split(" by ")[0]]
                           for f in plan.fields])))
        response = await client.query("loan-eligibility", ids, LOAN_FIELDS)
        say("")
        say(_indent(render_query(response)))
        say(f"   audited as leaf {response.receipt.leaf_index}; receipt carries an inclusion "
            f"proof against checkpoint size {response.receipt.tree_size}")
        say("\n== 4. refused: the same request plus an unlisted field (bank.card_number)")
        await _expect_refusal(client.query("loan-eligibility", ids[:1],
                                           [*LOAN_FIELDS, ("bank", "card_number")]))
        say("\n== 5. refused: bank income for a purpose no agreement grants (withdrawal-review)")
        await _expect_refusal(client.query("withdrawal-review", ids[:1],
                                           [("bank", "income_avg_12m")]))
        explain = await client.explain("withdrawal-review", [("bank", "income_avg_12m")])
        say(_indent("explain: " + render_explain(explain)))
    await usable_not_visible(cfg, address)


async def usable_not_visible(cfg: Config, address: str) -> None:
    """Encrypted compute (risk score, cohort statistics) and the PSI fraud cross-check."""
    from gateway.cli._compute import run_compute_scenarios
    from gateway.cli._join import run_join_scenario

    await run_compute_scenarios(cfg, address, say)
    await run_join_scenario(cfg, address, say)


async def _expect_refusal(call: Any) -> None:
    try:
        await call
    except grpc.RpcError as err:
        say(_indent(str(rpc_failure(err))))
        return
    say("   UNEXPECTED: the request was allowed")
    sys.exit(1)


def _indent(text: str) -> str:
    return "\n".join("   " + line for line in text.splitlines())
