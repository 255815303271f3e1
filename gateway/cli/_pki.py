"""``pgw pki init``: a development CA and the certificates for mutual TLS."""

from __future__ import annotations

import argparse
from typing import Any

from gateway.cli._common import add_config, config_of

TLS_SECTION = """[tls]
ca = "pki/ca.pem"
gateway_cert = "pki/gateway.pem"
gateway_key = "pki/gateway.key"
requester_tls = false
"""


def register(sub: Any) -> None:
    pki = sub.add_parser("pki", help="development certificates for TLS").add_subparsers(
        dest="pki_command", metavar="ACTION", required=True)
    p = pki.add_parser("init", help="make a development CA and gateway/connector certificates",
                       description="Write DIR/pki/ (DIR: the config file's directory): a "
                       "development CA (EC P-256), the gateway's client+server certificate and "
                       "one server certificate per configured connector. Existing files are "
                       "replaced. TLS is used once the config has a [tls] section.")
    add_config(p)
    p.set_defaults(run=run_pki_init)


def run_pki_init(args: argparse.Namespace) -> int:
    from gateway.pki import host_of, init_pki

    cfg = config_of(args)
    written = init_pki(cfg.path.parent / "pki",
                       {p: c.address for p, c in cfg.connectors.items()},
                       gateway_hosts=[host_of(cfg.listen)])
    for name, path in written.items():
        print(f"{name:<16} {path}")
    if cfg.tls is None:
        print(f"\n{cfg.path} has no [tls] section; add this to turn mutual TLS on:\n")
        print(TLS_SECTION, end="")
    return 0
