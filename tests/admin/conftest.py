"""Fixtures for the agreement-lifecycle tests: a real gateway and connectors per test.

The integration harness (``tests/integration/_harness.py``) is reused as the module
``pgw_it_harness``. Each ``hub`` gets its own audit database and two policy directories:
the hub's (the gateway's baseline) and the partners' (what the connectors hold), so a test
shows that an agreement activated at the hub works only once the partner installs it.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from pgw_it_harness import SEED, LoopThread, Stack, metadata, start_stack  # noqa: E402

from connectors.datagen import load_person_ids  # noqa: E402
from gateway.config import Config, load_config  # noqa: E402
from gateway.pb.pgw.v1 import admin_pb2, admin_pb2_grpc  # noqa: E402
from gateway.server import start_gateway, start_partner  # noqa: E402
from gateway.workdir import init_workdir  # noqa: E402

PEOPLE = 300
PG_ENV = "PGW_TEST_PG_DSN"
PG_SKIP = f"{PG_ENV} not set: the PostgreSQL registry tests need a server"
SHIPPED = Path(__file__).resolve().parents[2] / "policies"


@dataclasses.dataclass
class Hub:
    """A running stack plus the admin API and the partners' policy directory."""

    stack: Stack
    partner_policies: Path

    @property
    def cfg(self) -> Config:
        return self.stack.cfg

    def token(self, roles: Iterable[str], subject: str, org: str = "hpf-changzhou") -> str:
        return self.stack.token(org, list(roles), subject=subject)

    @property
    def admin(self) -> admin_pb2_grpc.AdminServiceStub:
        return admin_pb2_grpc.AdminServiceStub(self.stack.channel())

    def propose(self, text: str, subject: str = "admin-1",
                roles: Iterable[str] = ("policy-admin",)) -> admin_pb2.AgreementRecord:
        answer = self.admin.ProposeAgreement(
            admin_pb2.ProposeAgreementRequest(agreement_yaml=text),
            metadata=metadata(self.token(roles, subject)), timeout=10)
        return answer.record

    def approve(self, proposal_id: str, content_hash: str, subject: str,
                roles: Iterable[str] = ("auditor",)) -> admin_pb2.AgreementRecord:
        answer = self.admin.ApproveAgreement(
            admin_pb2.ApproveAgreementRequest(proposal_id=proposal_id, content_hash=content_hash),
            metadata=metadata(self.token(roles, subject)), timeout=10)
        return answer.record

    def revoke(self, agreement_id: str, subject: str = "officer-r",
               roles: Iterable[str] = ("auditor",)) -> admin_pb2.AgreementRecord:
        answer = self.admin.RevokeAgreement(
            admin_pb2.RevokeAgreementRequest(agreement_id=agreement_id, reason="test"),
            metadata=metadata(self.token(roles, subject)), timeout=10)
        return answer.record

    def list(self, agreement_id: str = "") -> list[admin_pb2.AgreementRecord]:
        answer = self.admin.ListAgreements(
            admin_pb2.ListAgreementsRequest(agreement_id=agreement_id),
            metadata=metadata(self.token(["requester"], "anyone")), timeout=10)
        return list(answer.agreements)

    def install_at_partner(self, partner: str, agreement_id: str, text: str) -> None:
        """What a partner does with ``pgw admin export``: replace its copy, restart."""
        (self.partner_policies / "agreements" / f"{agreement_id}.yaml").write_text(
            text, encoding="utf-8")
        port = self.stack.partners[partner].port
        self.stack.loop.run(self.stack.partners[partner].stop(0))
        self.stack.partners[partner] = self.stack.loop.run(
            start_partner(self.cfg, partner, listen=f"127.0.0.1:{port}"))

    def restart_gateway(self) -> None:
        for ch in self.stack._channels:
            ch.close()
        self.stack._channels.clear()
        self.stack._stub = None
        self.stack.loop.run(self.stack.gateway.stop(0.5))
        self.stack.gateway = self.stack.loop.run(start_gateway(self.cfg, listen="127.0.0.1:0"))

    def subjects(self, n: int = 3) -> list[str]:
        return load_person_ids(self.cfg.connector("bank").database, n)


@pytest.fixture(scope="session")
def loop() -> Iterator[LoopThread]:
    lt = LoopThread()
    yield lt
    lt.close()


@pytest.fixture(scope="session")
def base_cfg(tmp_path_factory: pytest.TempPathFactory) -> Config:
    root = tmp_path_factory.mktemp("pgw-admin")
    init_workdir(root, people=PEOPLE, seed=SEED)
    return load_config(root / "pgw.toml")


@pytest.fixture
def hub(loop: LoopThread, base_cfg: Config, tmp_path: Path) -> Iterator[Hub]:
    hub_policies = tmp_path / "hub-policies"
    partner_policies = tmp_path / "partner-policies"
    shutil.copytree(SHIPPED, hub_policies)
    shutil.copytree(SHIPPED, partner_policies)
    cfg = dataclasses.replace(
        base_cfg, audit_dsn=f"sqlite:///{tmp_path / 'audit.db'}", policies=hub_policies,
        witness_interval_ms=3_600_000,  # no cosigning calls while a connector restarts
        connectors={p: dataclasses.replace(c, policies=partner_policies,
                                           witness_state=tmp_path / f"witness-{p}.json")
                    for p, c in base_cfg.connectors.items()})
    stack = start_stack(loop, cfg)
    h = Hub(stack, partner_policies)
    yield h
    h.stack.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def registry_dsn(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database on each backend in turn (PostgreSQL: a fresh schema, dropped after)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.db'}"
        return
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(PG_SKIP)
    import psycopg

    schema = f"pgw_admin_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}".encode())
    try:
        yield f"{base}{'&' if '?' in base else '?'}options={quote(f'-csearch_path={schema}')}"
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE".encode())


@pytest.fixture
def policies_dir(tmp_path: Path) -> Path:
    return Path(shutil.copytree(SHIPPED, tmp_path / "policies"))
