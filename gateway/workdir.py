"""``pgw init``: lay out a working directory on embedded defaults.

It writes ``pgw.toml``, fresh keys (gateway spec and log signing keys, per-partner pseudonym
secrets and witness keys, a development token issuer), a copy of the shipped agreements, and
the partners' synthetic SQLite databases. Everything stays on local disk; nothing downloads.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from gateway.auth import DevIssuer
from gateway.config import known_partners
from gateway.keys import generate_keypair, write_secret

ISSUER = "https://idp.pgw.local"
AUDIENCE = "pgw-gateway"
BASE_PORT = 50061


def _database_name(partner: str) -> str:
    from connectors.registry import plugin

    return plugin(partner).database_name


def shipped_policies() -> Path:
    """The agreements shipped with pgw (the repository's ``policies/``)."""
    here = Path(__file__).resolve().parent.parent / "policies"
    if not here.is_dir():
        raise FileNotFoundError("shipped policies not found next to the pgw package; "
                                "pass --policies DIR")
    return here


TLS_SECTION = """
[tls]                       # mutual TLS gateway <-> connectors; files from `pgw pki init`
ca = "pki/ca.pem"
gateway_cert = "pki/gateway.pem"
gateway_key = "pki/gateway.key"
requester_tls = false       # true: the public port speaks TLS too (gateway certificate)
"""


def render_config(*, people: int, seed: int, gateway_port: int = 50051,
                  tls: bool = False) -> str:
    parts = [f"""# pgw configuration written by `pgw init`. Every command reads it: --config FILE.
# Relative paths are relative to this file.

[gateway]
listen = "127.0.0.1:{gateway_port}"
policies = "policies"
spec_key = "keys/gateway-spec.pem"
spec_ttl_s = 30
request_timeout_s = 10

[auth]
jwks = "keys/issuer/jwks.json"
issuer = "{ISSUER}"
audience = "{AUDIENCE}"
leeway_s = 30
dev_issuer_dir = "keys/issuer"

[audit]
dsn = "audit.db"            # or postgresql://user@host/db for several replicas
hash = "sha256"             # or "sm3"; fixed when the log is created
origin = "pgw.local/hpf-changzhou/audit"
log_key = "keys/log.pem"
log_public_key = "keys/log.pub.pem"
pseudonym_key = "keys/audit-pseudonym.key"
witness_quorum = 2          # cosignatures required from the partners' witnesses
witness_interval_ms = 1000  # how often the gateway asks the witnesses to cosign

[data]
dir = "data"
seed = {seed}
people = {people}
"""]
    for i, partner in enumerate(known_partners()):
        parts.append(f"""
[connectors.{partner}]
address = "127.0.0.1:{BASE_PORT + i}"
database = "data/{_database_name(partner)}"
pseudonym_secret = "keys/{partner}/pseudonym.key"
witness_key = "keys/{partner}/witness.pem"
witness_public_key = "keys/{partner}/witness.pub.pem"
witness_state = "state/witness-{partner}.json"
trusted_gateway_keys = ["keys/gateway-spec.pub.pem"]
""")
    if tls:
        parts.append(TLS_SECTION)
    return "".join(parts)


def init_workdir(workdir: Path, *, people: int, seed: int, policies: Path | None = None,
                 generate_data: bool = True, tls: bool = False,
                 progress: Callable[[str, int, int], None] | None = None) -> Path:
    """Create ``workdir`` with config, keys, agreements and data; return the config path."""
    workdir.mkdir(parents=True, exist_ok=True)
    keys = workdir / "keys"
    (workdir / "state").mkdir(exist_ok=True)
    config = workdir / "pgw.toml"
    config.write_text(render_config(people=people, seed=seed, tls=tls))
    target = workdir / "policies"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(policies or shipped_policies(), target)
    generate_keypair(keys / "gateway-spec.pem", keys / "gateway-spec.pub.pem")
    generate_keypair(keys / "log.pem", keys / "log.pub.pem")
    write_secret(keys / "audit-pseudonym.key")
    for partner in known_partners():
        write_secret(keys / partner / "pseudonym.key")
        generate_keypair(keys / partner / "witness.pem", keys / partner / "witness.pub.pem")
    DevIssuer.create(keys / "issuer", issuer=ISSUER, audience=AUDIENCE)
    if tls:  # the development PKI `pgw pki init` would make
        from gateway.pki import init_pki

        init_pki(workdir / "pki", {p: f"127.0.0.1:{BASE_PORT + i}"
                                   for i, p in enumerate(known_partners())})
    if generate_data:
        from connectors.datagen import generate
        from connectors.datagen._plugins import generate_plugin_data

        generate(workdir / "data", seed=seed, people=people, progress=progress)
        generate_plugin_data(workdir / "data", seed=seed, people=people, progress=progress)
    return config
