"""Set-up commands: ``init``, ``data generate``, ``token issue``, ``policy lint``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from gateway.cli._common import CliError, add_config, config_of


def register(sub: Any) -> None:
    p = sub.add_parser("init", help="create a working directory: config, keys, agreements, data",
                       description="Create DIR/pgw.toml with fresh keys, a copy of the shipped "
                       "agreements and the partners' synthetic databases.")
    p.add_argument("--workdir", type=Path, required=True, metavar="DIR")
    p.add_argument("--people", type=int, default=100_000, help="synthetic people (default 100000)")
    p.add_argument("--seed", type=int, default=20261125)
    p.add_argument("--tls", action="store_true",
                   help="mutual TLS between gateway and connectors: write [tls] and a "
                   "development PKI (default: plaintext)")
    p.set_defaults(run=run_init)

    data = sub.add_parser("data", help="synthetic partner data").add_subparsers(
        dest="data_command", metavar="ACTION", required=True)
    g = data.add_parser("generate", help="fill the partners' SQLite databases",
                        description="Write one SQLite database per partner describing the same "
                        "synthetic people; deterministic from the seed.")
    add_config(g)
    g.add_argument("--people", type=int, help="how many people (default: [data] people)")
    g.add_argument("--seed", type=int, help="random seed (default: [data] seed)")
    g.add_argument("--out", type=Path, help="directory (default: [data] dir)")
    g.set_defaults(run=run_generate)

    token = sub.add_parser("token", help="development tokens").add_subparsers(
        dest="token_command", metavar="ACTION", required=True)
    t = token.add_parser("issue", help="issue a JWT from the local development issuer",
                         description="Print a bearer JWT signed by the development issuer "
                         "configured in [auth] dev_issuer_dir.")
    add_config(t)
    t.add_argument("--org", required=True, help="organisation, e.g. hpf-changzhou")
    t.add_argument("--role", required=True, action="append",
                   choices=["requester", "auditor", "policy-admin", "integrator"],
                   help="role (repeat for several)")
    t.add_argument("--as", dest="subject_name", default="cli", metavar="NAME",
                   help="user name (sub claim)")
    t.add_argument("--ttl", type=int, default=900, help="lifetime in seconds (default 900)")
    t.set_defaults(run=run_token)

    policy = sub.add_parser("policy", help="sharing agreements").add_subparsers(
        dest="policy_command", metavar="ACTION", required=True)
    lint = policy.add_parser("lint", help="check agreement files offline",
                             description="Load and validate every agreement in DIR; print each "
                             "problem as FILE: RULE: REASON; exit 1 if there is any.")
    lint.add_argument("directory", type=Path, metavar="DIR")
    lint.set_defaults(run=run_lint)


def _progress(partner: str, done: int, total: int) -> None:
    if done == total or done % 20_000 == 0:
        print(f"  {partner:<16} {done:>7}/{total} people", file=sys.stderr)


def run_init(args: argparse.Namespace) -> int:
    from gateway.workdir import init_workdir

    config = init_workdir(args.workdir, people=args.people, seed=args.seed, tls=args.tls,
                          progress=_progress)
    print(f"wrote {config}")
    return 0


def run_generate(args: argparse.Namespace) -> int:
    from connectors.datagen import generate

    cfg = config_of(args)
    out = args.out or cfg.data_dir
    paths = generate(out, seed=args.seed if args.seed is not None else cfg.data_seed,
                     people=args.people or cfg.data_people, progress=_progress)
    for partner, path in sorted(paths.items()):
        print(f"{partner:<16} {path}")
    return 0


def run_token(args: argparse.Namespace) -> int:
    from gateway.auth import DevIssuer

    cfg = config_of(args)
    try:
        issuer = DevIssuer.load(cfg.dev_issuer_dir, issuer=cfg.issuer, audience=cfg.audience)
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot load the development issuer from {cfg.dev_issuer_dir}: "
                       f"{type(exc).__name__}", hint="run `pgw init --workdir DIR` first") from None
    print(issuer.issue(args.org, args.role, subject=args.subject_name, ttl_s=args.ttl))
    return 0


def run_lint(args: argparse.Namespace) -> int:
    from gateway.policy import default_catalogues, lint_policies

    if not args.directory.is_dir():
        raise CliError(f"{args.directory}: not a directory")
    problems = lint_policies(args.directory, default_catalogues())
    for p in problems:
        print(f"{p.file}: {p.rule}: {p.reason}")
    if problems:
        print(f"{len(problems)} problem(s) found", file=sys.stderr)
        return 1
    print(f"{args.directory}: all agreements valid")
    return 0
