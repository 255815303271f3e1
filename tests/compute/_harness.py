"""Harness for the compute tests: real servers on ``127.0.0.1:0`` (STYLE habit 9).

Copied in spirit from ``tests/integration/_harness.py``: the gateway and the three connectors run
in-process inside one background thread that owns an asyncio loop; the tests call the requester
SDK (``ComputeClient``) on that loop, exactly as a remote requester would, and read the raw
SQLite rows directly as the ground truth.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import threading
from collections.abc import Coroutine, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import grpc

from connectors.datagen import load_person_ids
from gateway.audit import AuditEntry
from gateway.audit._store import iter_entries, open_store
from gateway.auth import DevIssuer
from gateway.client import AggregateResult, ComputeClient, ScoreResult
from gateway.config import Config
from gateway.privacy import HeKeys
from gateway.server import Running, start_gateway

T = TypeVar("T")
PEOPLE = 2_000
SEED = 20261125
HPF = "hpf-changzhou"
TABLES = {"social-security": "social_security", "education": "education", "bank": "bank"}
#: The partners these tests run (the built-ins the shipped compute agreements name).
PARTNERS = tuple(TABLES)


class LoopThread:
    """An asyncio loop in a daemon thread; ``run`` executes a coroutine there and waits."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name="pgw-compute-loop", daemon=True)
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 120.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        async def drain() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.loop.shutdown_asyncgens()

        self.run(drain())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


def read_audit(dsn: str) -> list[AuditEntry]:
    store = open_store(dsn)
    try:
        return [AuditEntry.decode(data) for _, data in iter_entries(store)]
    finally:
        store.close()


@dataclasses.dataclass
class Stack:
    loop: LoopThread
    cfg: Config
    gateway: Running
    partners: dict[str, Running]
    issuer: DevIssuer
    keys: HeKeys

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.gateway.port}"

    def connector_address(self, partner: str) -> str:
        return f"127.0.0.1:{self.partners[partner].port}"

    def token(self, org: str = HPF, roles: Iterable[str] = ("requester",)) -> str:
        return self.issuer.issue(org, list(roles), subject="risk-officer-3")

    def _client(self, token: str | None) -> ComputeClient:
        return ComputeClient(self.address, token or self.token(), keys=self.keys, timeout_s=120)

    def score(self, subjects: Sequence[str], *, model: str = "hpf-loan-risk",
              purpose: str = "loan-risk-scoring", token: str | None = None) -> ScoreResult:
        async def go() -> ScoreResult:
            async with self._client(token) as client:
                return await client.score(model, subjects, purpose=purpose)
        return self.loop.run(go())

    def aggregate(self, partner: str, field: str, op: str, attribute: str, value: str, *,
                  purpose: str = "statistics", token: str | None = None) -> AggregateResult:
        async def go() -> AggregateResult:
            async with self._client(token) as client:
                return await client.aggregate(partner, field, op, attribute, value,
                                              purpose=purpose)
        return self.loop.run(go())

    def audit(self) -> list[AuditEntry]:
        return read_audit(self.cfg.audit_dsn)

    def close(self) -> None:
        self.loop.run(self.gateway.stop(0.5))
        for r in self.partners.values():
            self.loop.run(r.stop(0.5))


async def start_compute_partner(cfg: Config, partner: str) -> Running:
    """A connector as ``start_partner`` builds it, minus the services other tests own: the
    product's ``start_connector`` registers the PartnerComputeService under test."""
    import importlib

    from connectors.sdk._server import ConnectorService, start_connector
    from connectors.sdk._spec import SpecVerifier
    from connectors.sdk._witness import Witness
    from gateway.audit import SIG_TYPE_COSIGNATURE_V1, NoteSigner, NoteVerifier
    from gateway.keys import load_private_key, load_public_key, load_secret
    from gateway.policy import default_catalogues, load_policies

    ccfg = cfg.connector(partner)
    policies = load_policies(ccfg.policies, default_catalogues()).for_partner(partner)
    module = importlib.import_module(f"connectors.{partner.replace('-', '_')}.source")
    source = module.open_source(ccfg.database)
    verifier = SpecVerifier([load_public_key(p) for p in ccfg.trusted_gateway_keys])
    witness = Witness(
        NoteSigner(cfg.witness_name(partner), load_private_key(ccfg.witness_key),
                   SIG_TYPE_COSIGNATURE_V1),
        NoteVerifier(cfg.audit_origin, load_public_key(cfg.log_public_key)),
        origin=cfg.audit_origin, hash_name=cfg.audit_hash, state_path=ccfg.witness_state)
    service = ConnectorService(source, policies, verifier, load_secret(ccfg.pseudonym_secret),
                               witness=witness)
    server, port = await start_connector(service, "127.0.0.1:0")
    return Running(server, port, [source.aclose])


def start_stack(loop: LoopThread, cfg: Config, keys: HeKeys) -> Stack:
    async def start() -> tuple[Config, Running, dict[str, Running]]:
        partners: dict[str, Running] = {}
        for p in PARTNERS:
            partners[p] = await start_compute_partner(cfg, p)
        live = dataclasses.replace(cfg, connectors={
            p: dataclasses.replace(c, address=f"127.0.0.1:{partners[p].port}")
            for p, c in cfg.connectors.items() if p in partners})
        return live, await start_gateway(live, listen="127.0.0.1:0"), partners

    live, gateway, partners = loop.run(start())
    issuer = DevIssuer.load(cfg.dev_issuer_dir, issuer=cfg.issuer, audience=cfg.audience)
    return Stack(loop, live, gateway, partners, issuer, keys)


class RawData:
    """The partners' raw rows straight from their SQLite files (the ground truth)."""

    def __init__(self, cfg: Config) -> None:
        self.rows: dict[str, dict[str, dict[str, Any]]] = {}
        for partner, table in TABLES.items():
            uri = Path(cfg.connector(partner).database).resolve().as_uri() + "?mode=ro"
            conn = sqlite3.connect(uri, uri=True)
            conn.row_factory = sqlite3.Row
            try:
                self.rows[partner] = {r["person_id"]: dict(r)
                                      for r in conn.execute(f'SELECT * FROM "{table}"')}
            finally:
                conn.close()
        self.ordered = load_person_ids(cfg.connector("social-security").database)
        self.in_all = [i for i in self.ordered if all(i in self.rows[p] for p in PARTNERS)]

    def value(self, partner: str, field: str, person: str) -> float:
        row = self.rows[partner].get(person)
        return 0.0 if row is None or row[field] is None else float(row[field])


def code_of(call: Any) -> grpc.RpcError:
    try:
        call()
    except grpc.RpcError as err:
        return err
    raise AssertionError("the call was allowed")
