"""Shared CLI plumbing: the --config option, tokens, tables and error reporting."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc

from gateway.config import DEFAULT_PATH, Config, load_config
from gateway.errors import GatewayError


class CliError(Exception):
    """A user-facing failure: printed as one line (plus a hint), exit status 1 or given."""

    def __init__(self, message: str, *, hint: str = "", status: int = 1) -> None:
        super().__init__(message)
        self.hint, self.status = hint, status


def report_error(err: CliError) -> int:
    print(f"pgw: error: {err}", file=sys.stderr)
    if err.hint:
        print(f"  hint: {err.hint}", file=sys.stderr)
    return err.status


def add_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=DEFAULT_PATH, metavar="FILE",
                        help="config file (default: ./pgw.toml)")


def config_of(args: argparse.Namespace) -> Config:
    try:
        return load_config(args.config)
    except GatewayError as err:
        raise CliError(err.message) from None


def requester_ca(cfg: Config) -> bytes | None:
    """The CA to verify the gateway with, when its public port serves TLS (``[tls]``)."""
    if cfg.tls is None or not cfg.tls.requester_tls:
        return None
    try:
        return cfg.tls.ca.read_bytes()
    except OSError as exc:
        raise CliError(f"{cfg.tls.ca}: cannot read the CA certificate: {exc.strerror}",
                       hint="run `pgw pki init --config FILE`") from None


def token_for(cfg: Config, args: argparse.Namespace) -> str:
    """``--token`` as given, or one issued by the local development issuer for --org/--role."""
    if getattr(args, "token", None):
        return str(args.token)
    from gateway.auth import DevIssuer

    if not args.org or not args.role:
        raise CliError("no credentials", hint="pass --token JWT, or --org ORG --role ROLE to use "
                       "the local development issuer")
    issuer = DevIssuer.load(cfg.dev_issuer_dir, issuer=cfg.issuer, audience=cfg.audience)
    return issuer.issue(args.org, [args.role], subject=args.subject_name or "cli")


def add_credentials(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("credentials")
    group.add_argument("--token", help="bearer JWT (default: issue one locally for --org/--role)")
    group.add_argument("--org", help="organisation for a development token, e.g. hpf-changzhou")
    group.add_argument("--role", help="role for a development token, e.g. requester")
    group.add_argument("--as", dest="subject_name", metavar="NAME",
                       help="user name inside the development token (default: cli)")


def rpc_failure(err: grpc.RpcError) -> CliError:
    """Turn a failed call into a readable error, with field violations and refused fields."""
    from gateway.status import bad_request_fields, refused_fields

    code = err.code()  # type: ignore[attr-defined]
    lines = [f"{code.name}: {err.details()}"]  # type: ignore[attr-defined]
    fields = bad_request_fields(err)
    if fields:
        lines.append("offending fields: " + ", ".join(fields))
    refused = refused_fields(err)
    if refused:
        lines.append("refused fields: " + ", ".join(refused))
    return CliError("\n  ".join(lines), status=2)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain text table, column widths fitted to the content."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*cells[0]), fmt.format(*("-" * w for w in widths))]
    out += [fmt.format(*row) for row in cells[1:]]
    return "\n".join(line.rstrip() for line in out)
