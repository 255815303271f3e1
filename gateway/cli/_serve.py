"""Long-running services: ``gateway serve`` and ``connector serve PARTNER``."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from gateway.cli import _connector_kit
from gateway.cli._common import CliError, add_config, config_of
from gateway.errors import GatewayError


def register(sub: Any) -> None:
    gw = sub.add_parser("gateway", help="the gateway service").add_subparsers(
        dest="gateway_command", metavar="ACTION", required=True)
    s = gw.add_parser("serve", help="serve the requester API (grpc.aio, health service)",
                      description="Serve the requester API on [gateway] listen until SIGTERM; "
                      "in-flight calls are drained on shutdown.")
    add_config(s)
    s.add_argument("--listen", help="override [gateway] listen, e.g. 127.0.0.1:50051")
    s.set_defaults(run=run_gateway)

    conn = sub.add_parser("connector", help="partner connectors").add_subparsers(
        dest="connector_command", metavar="ACTION", required=True)
    c = conn.add_parser("serve", help="serve one partner's connector",
                        description="Serve the connector API for PARTNER over its local database, "
                        "verifying every signed ReleaseSpec against the partner's own agreements.")
    c.add_argument("partner", metavar="PARTNER",
                   help="an installed partner (entry point group pgw.connectors)")
    add_config(c)
    c.add_argument("--listen", help="override the connector's address")
    c.set_defaults(run=run_connector)
    _connector_kit.register(conn)


def _run(start: Any, service: str) -> int:
    from gateway.logs import configure_logging
    from gateway.server import serve_forever

    async def main() -> None:
        running = await start()
        print(f"listening on port {running.port}", flush=True)
        await serve_forever(running)

    configure_logging(service=service)
    try:
        asyncio.run(main())
    except GatewayError as err:
        raise CliError(err.message) from None
    return 0


def run_gateway(args: argparse.Namespace) -> int:
    from gateway.server import start_gateway

    cfg = config_of(args)
    return _run(lambda: start_gateway(cfg, listen=args.listen), "gateway")


def run_connector(args: argparse.Namespace) -> int:
    from gateway.config import known_partners
    from gateway.server import start_partner

    try:
        known = known_partners()
    except GatewayError as err:
        raise CliError(err.message) from None
    if args.partner not in known:
        raise CliError(f"unknown partner {args.partner!r}; want one of {', '.join(known)}")
    cfg = config_of(args)
    return _run(lambda: start_partner(cfg, args.partner, listen=args.listen),
                f"connector-{args.partner}")
