"""``pgw``: the command line for requesters, officers, integrators and operators.

Every command reads one config file: ``--config FILE`` (default ``./pgw.toml``).
"""

from __future__ import annotations

import argparse
import sys

from gateway.cli import (
    _admin,
    _audit,
    _client,
    _compute,
    _demo,
    _join,
    _pki,
    _serve,
    _setup,
)
from gateway.cli._common import CliError, report_error

EPILOG = """examples:
  pgw demo --workdir demo-work            run the loan-eligibility demo and keep its files
  pgw gateway serve --config demo-work/pgw.toml
  pgw query --config demo-work/pgw.toml --org hpf-changzhou --role requester \\
      --purpose loan-eligibility --subject 320402199001011234 --field education.highest_degree
  pgw audit verify --config demo-work/pgw.toml
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pgw", description="pgw: a privacy-preserving data-sharing gateway "
        "(minimum-necessary policies, encrypted compute, PSI, audit chain).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (_demo, _setup, _pki, _serve, _client, _compute, _join, _audit,
                   _admin):
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except CliError as err:
        return report_error(err)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
