"""Integrator commands: ``connector new NAME`` and ``connector check ADDRESS``."""

from __future__ import annotations

import argparse
import asyncio
from datetime import date
from pathlib import Path
from typing import Any

from gateway.cli._common import CliError, add_config, config_of
from gateway.errors import GatewayError


def register(conn: Any) -> None:
    """Add ``new`` and ``check`` to the ``connector`` command group."""
    n = conn.add_parser("new", help="scaffold a connector package for a new partner",
                        description="Write pgw-connector-NAME/ (schema, data access by "
                        "configuration, synthetic data, a sample agreement, tests, and a "
                        "pyproject.toml declaring the pgw.connectors entry point). Its tests "
                        "pass as generated: cd into it and run python -m pytest.")
    n.add_argument("name", metavar="NAME", help="partner id, e.g. real-estate")
    n.add_argument("--dir", type=Path, default=Path("."), metavar="DIR",
                   help="where to create the package (default: current directory)")
    n.set_defaults(run=run_new)

    c = conn.add_parser("check", help="run the conformance battery against a running connector",
                        description="Check a running connector the way the gateway talks to it: "
                        "Describe, signed specs (unsigned, expired, replayed, widened and "
                        "wrongly-signed ones must be refused), every granted transform, no "
                        "undeclared field, malformed subjects, deadlines. Needs the gateway's "
                        "spec key and the agreements from the config; with a [tls] section it "
                        "dials with the gateway's client certificate, as the gateway does. "
                        "Exit 0 only if all pass.")
    c.add_argument("address", metavar="ADDRESS", help="host:port of the connector")
    add_config(c)
    c.add_argument("--partner", help="partner id (default: what the connector describes)")
    c.add_argument("--agreement", metavar="ID",
                   help="agreement to test under (default: the first active one for the partner)")
    c.add_argument("--subject", action="append", default=[], metavar="ID",
                   help="a person id the partner holds (repeatable; default: the first ten of "
                   "the partner's database when the config has its [connectors.NAME] section)")
    c.add_argument("--timeout", type=float, default=5.0, help="per-call deadline in seconds")
    c.set_defaults(run=run_check)


def run_new(args: argparse.Namespace) -> int:
    from connectors.sdk._scaffold import scaffold

    try:
        root = scaffold(args.name, args.dir)
    except (ValueError, FileExistsError) as exc:
        raise CliError(str(exc)) from None
    print(f"created {root}")
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        print(f"  {path.relative_to(root)}")
    print(f"next: cd {root} && python -m pytest -q")
    return 0


def _dialer(cfg: Any) -> Any:
    """How the check dials: as the gateway does, with its client certificate when the config
    has a [tls] section (connectors then admit only that certificate), else plaintext."""
    import grpc

    if cfg.tls is None:
        return grpc.aio.insecure_channel
    from gateway.pki import gateway_channel_credentials

    credentials = gateway_channel_credentials(cfg.tls)
    return lambda address: grpc.aio.secure_channel(address, credentials)


async def _describe_partner(dial: Any, address: str, timeout: float) -> str:
    import grpc

    from gateway.pb.pgw.v1 import connector_pb2, connector_pb2_grpc

    async with dial(address) as channel:
        try:
            d = await connector_pb2_grpc.ConnectorServiceStub(channel).Describe(
                connector_pb2.DescribeRequest(), timeout=timeout)
        except grpc.aio.AioRpcError as err:
            raise CliError(f"{address}: Describe failed: {err.code().name}") from None
    return str(d.partner)


async def _subjects(cfg: Any, partner: str) -> list[str]:
    from connectors.registry import open_source
    from connectors.sdk import SourceConfig

    if partner not in cfg.connectors:
        raise CliError(f"no subjects for {partner}", hint="pass --subject ID (a person the "
                       f"partner holds) or use a config with a [connectors.{partner}] section")
    ccfg = cfg.connectors[partner]
    source = open_source(partner, SourceConfig(partner, ccfg.database, ccfg.sql))
    out: list[str] = []
    try:
        async for subject, _ in source.stream_column(source.schema.fields[0].name):
            out.append(subject)
            if len(out) == 10:
                break
    finally:
        await source.aclose()
    return out


def run_check(args: argparse.Namespace) -> int:
    from connectors.sdk._conformance import check_connector, pick_agreement, render_report
    from gateway.keys import load_private_key
    from gateway.policy import load_policies

    cfg = config_of(args)
    dial = _dialer(cfg)

    async def main() -> list[Any]:
        partner = args.partner or await _describe_partner(dial, args.address, args.timeout)
        try:
            policies = load_policies(cfg.policies)
            agreement = (policies.agreement(args.agreement) if args.agreement else
                         pick_agreement(policies.agreements, partner, date.today()))
        except (GatewayError, LookupError) as exc:
            raise CliError(getattr(exc, "message", str(exc))) from None
        if agreement.partner != partner:
            raise CliError(f"agreement {agreement.id} is for {agreement.partner}, not {partner}")
        subjects = args.subject or await _subjects(cfg, partner)
        print(f"checking {partner} at {args.address} under {agreement.label} "
              f"with {len(subjects)} subjects", flush=True)
        return await check_connector(args.address, spec_key=load_private_key(cfg.spec_key),
                                     agreement=agreement, subjects=subjects,
                                     timeout_s=args.timeout, channel_factory=dial)

    results = asyncio.run(main())
    print(render_report(results))
    return 0 if results and all(r.ok for r in results) else 1
