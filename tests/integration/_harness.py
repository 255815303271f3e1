"""Harness for the integration tests: real servers (STYLE habit 9).

The gateway and the three connectors run in-process on ``127.0.0.1:0`` inside one background
thread that owns an asyncio loop (there is no pytest-asyncio); the tests talk to them through
synchronous ``grpc`` channels, exactly as a remote requester would. The data are the real
synthetic SQLite databases made by ``init_workdir``; tests read the raw rows directly with
``sqlite3`` to check what the gateway released against what the partner holds.

* ``stack`` (session): the shipped agreements, real connectors, a SQLite audit log.
* ``make_stack`` (function): starts a further, fully isolated stack (own connectors, own audit
  log, own witness state) with fault-injection doubles patched in through the product's own
  wiring (``start_partner`` / ``start_gateway``), and stops it after the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import shutil
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest

from connectors.datagen import load_person_ids
from gateway.audit import AuditEntry
from gateway.audit._store import iter_entries, open_store
from gateway.auth import DevIssuer
from gateway.config import PARTNERS, Config
from gateway.pb.pgw.v1 import (
    common_pb2,
    connector_pb2,
    connector_pb2_grpc,
    gateway_pb2,
    gateway_pb2_grpc,
)
from gateway.policy import Agreement
from gateway.server import Running, start_gateway, start_partner

T = TypeVar("T")
PEOPLE = 2_000
SEED = 20261125
HPF = "hpf-changzhou"
HOUSING = "housing-bureau"
TABLES = {"social-security": "social_security", "education": "education", "bank": "bank"}
LOAN_SS = ["contribution_months", "insured_status", "continuous_months", "employer_code"]
Selections = Mapping[str, Sequence[str]] | Sequence[tuple[str, str]]


class LoopThread:
    """An asyncio loop in a daemon thread; ``run`` executes a coroutine there and waits."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name="pgw-test-loop", daemon=True)
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
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


def metadata(token: str | None) -> list[tuple[str, str]]:
    return [] if token is None else [("authorization", f"Bearer {token}")]


def selections_of(selections: Selections) -> list[common_pb2.Selection]:
    if isinstance(selections, Mapping):
        return [common_pb2.Selection(partner=p, fields=list(f)) for p, f in selections.items()]
    grouped: dict[str, list[str]] = {}
    for partner, field in selections:
        grouped.setdefault(partner, []).append(field)
    return [common_pb2.Selection(partner=p, fields=f) for p, f in grouped.items()]


def read_audit(dsn: str) -> list[AuditEntry]:
    """Every entry of the audit log at ``dsn``, decoded (a second, read-side connection)."""
    store = open_store(dsn)
    try:
        return [AuditEntry.decode(data) for _, data in iter_entries(store)]
    finally:
        store.close()


def sqlite_path(dsn: str) -> Path:
    assert dsn.startswith("sqlite://"), dsn
    return Path(dsn.removeprefix("sqlite://"))


@dataclasses.dataclass
class Stack:
    """One running gateway and its connectors, with a synchronous client side."""

    loop: LoopThread
    cfg: Config                      # live: connector addresses are the running ports
    gateway: Running
    partners: dict[str, Running]
    issuer: DevIssuer
    _channels: list[grpc.Channel] = dataclasses.field(default_factory=list)
    _stub: gateway_pb2_grpc.GatewayServiceStub | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.gateway.port}"

    def connector_address(self, partner: str) -> str:
        return f"127.0.0.1:{self.partners[partner].port}"

    def channel(self, address: str | None = None) -> grpc.Channel:
        """A channel closed with the stack (so no test leaks one)."""
        ch = grpc.insecure_channel(address or self.address)
        self._channels.append(ch)
        return ch

    @property
    def stub(self) -> gateway_pb2_grpc.GatewayServiceStub:
        if self._stub is None:
            self._stub = gateway_pb2_grpc.GatewayServiceStub(self.channel())
        return self._stub

    def connector_stub(self, partner: str) -> connector_pb2_grpc.ConnectorServiceStub:
        return connector_pb2_grpc.ConnectorServiceStub(
            self.channel(self.connector_address(partner)))

    def token(self, org: str = HPF, roles: Iterable[str] = ("requester",), **kw: Any) -> str:
        return self.issuer.issue(org, list(roles), subject=kw.pop("subject", "officer-7"), **kw)

    def query(self, purpose: str, subjects: Sequence[str], selections: Selections, *,
              token: str | None = "", timeout: float = 10.0) -> gateway_pb2.QueryResponse:
        """Query; ``token=""`` means a fresh HPF requester token, ``None`` no token at all."""
        request = gateway_pb2.QueryRequest(purpose=purpose, subjects=list(subjects),
                                           selections=selections_of(selections))
        tok = self.token() if token == "" else token
        return self.stub.Query(request, metadata=metadata(tok), timeout=timeout)

    def explain(self, purpose: str, selections: Selections, *, subject_count: int = 1,
                token: str | None = "", timeout: float = 10.0) -> gateway_pb2.ExplainResponse:
        request = gateway_pb2.ExplainRequest(purpose=purpose, subject_count=subject_count,
                                             selections=selections_of(selections))
        tok = self.token() if token == "" else token
        return self.stub.Explain(request, metadata=metadata(tok), timeout=timeout)

    def audit(self) -> list[AuditEntry]:
        return read_audit(self.cfg.audit_dsn)

    def close(self, owned: Iterable[str] = PARTNERS) -> None:
        for ch in self._channels:
            ch.close()
        self._channels.clear()
        self._stub = None
        self.loop.run(self.gateway.stop(0.5))
        for partner in owned:
            self.loop.run(self.partners[partner].stop(0.5))


def start_stack(loop: LoopThread, cfg: Config) -> Stack:
    """Start three connectors and a gateway for ``cfg`` on ephemeral ports."""

    async def start() -> tuple[Config, Running, dict[str, Running]]:
        partners: dict[str, Running] = {}
        try:
            for p in PARTNERS:
                partners[p] = await start_partner(cfg, p, listen="127.0.0.1:0")
            live = dataclasses.replace(cfg, connectors={
                p: dataclasses.replace(c, address=f"127.0.0.1:{partners[p].port}")
                for p, c in cfg.connectors.items()})
            gateway = await start_gateway(live, listen="127.0.0.1:0")
        except BaseException:
            for r in partners.values():
                await r.stop(0)
            raise
        return live, gateway, partners

    live, gateway, partners = loop.run(start())
    issuer = DevIssuer.load(cfg.dev_issuer_dir, issuer=cfg.issuer, audience=cfg.audience)
    return Stack(loop, live, gateway, partners, issuer)


class RawData:
    """The partners' raw rows, read straight from their SQLite files (the ground truth)."""

    def __init__(self, cfg: Config) -> None:
        self.rows: dict[str, dict[str, dict[str, Any]]] = {}
        for partner, table in TABLES.items():
            uri = cfg.connector(partner).database.resolve().as_uri() + "?mode=ro"
            conn = sqlite3.connect(uri, uri=True)
            conn.row_factory = sqlite3.Row
            try:
                self.rows[partner] = {r["person_id"]: dict(r)
                                      for r in conn.execute(f'SELECT * FROM "{table}"')}
            finally:
                conn.close()
        ss = cfg.connector("social-security").database
        self.ordered = load_person_ids(ss)
        self.in_all = [i for i in self.ordered
                       if all(i in self.rows[p] for p in TABLES)]

    def row(self, partner: str, person: str) -> dict[str, Any]:
        return self.rows[partner][person]

    def not_in(self, partner: str) -> list[str]:
        """Social-security people the ``partner`` holds no record for."""
        return [i for i in self.ordered if i not in self.rows[partner]]


def isolated_cfg(base: Config, where: Path, *, policies: Path | None = None,
                 **gateway_overrides: Any) -> Config:
    """``base`` with its own audit log, witness state and (optionally) policies under ``where``."""
    where.mkdir(parents=True, exist_ok=True)
    connectors = {
        p: dataclasses.replace(c, witness_state=where / f"witness-{p}.json",
                               policies=policies or c.policies)
        for p, c in base.connectors.items()}
    return dataclasses.replace(
        base, audit_dsn="sqlite:///" + str(where / "audit.db"),
        policies=policies or base.policies, connectors=connectors, **gateway_overrides)


def copy_policies(src: Path, dst: Path, extra: Mapping[str, str]) -> Path:
    """A policy directory: ``src`` plus the extra agreement files (name -> YAML text)."""
    shutil.copytree(src, dst)
    for name, text in extra.items():
        (dst / "agreements" / name).write_text(text, encoding="utf-8")
    return dst


def new_request_id() -> str:
    return uuid.uuid4().hex


def params_json(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, separators=(",", ":"))


def make_spec(a: Agreement, subjects: list[str], **over: Any) -> connector_pb2.ReleaseSpec:
    """The spec the gateway would send for ``a`` (every granted field), with overrides."""
    now_ms = int(time.time() * 1000)
    spec = connector_pb2.ReleaseSpec(
        request_id=uuid.uuid4().hex, requester_org=a.requester_org, purpose=a.purpose,
        agreement=common_pb2.AgreementRef(id=a.id, version=a.version,
                                          content_hash=a.content_hash),
        partner=a.partner, subjects=subjects,
        fields=[common_pb2.FieldRelease(field=g.field, transform=g.transform,
                                        params_json=params_json(g.param_dict))
                for g in a.fields],
        issued_at_ms=now_ms, expires_at_ms=now_ms + 30_000)
    for name, value in over.items():
        if name == "fields":
            del spec.fields[:]
            spec.fields.extend(value)
        elif name == "agreement":
            spec.agreement.CopyFrom(value)
        else:
            setattr(spec, name, value)
    return spec


def code_of(call: Callable[[], Any]) -> grpc.RpcError:
    """Run ``call`` and return the RpcError it must raise."""
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value


def values_by_field(result: gateway_pb2.SubjectResult) -> dict[tuple[str, str], Any]:
    from connectors.sdk._values import from_value

    out: dict[tuple[str, str], Any] = {}
    for v in result.values:
        out[(v.partner, v.field)] = from_value(v.value) if v.HasField("value") else None
    return out


@contextlib.contextmanager
def sqlite_trigger(db: Path, name: str, sql: str) -> Iterator[None]:
    """Install a trigger in a real SQLite file (another connection) and drop it afterwards."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute(sql)
        yield
    finally:
        conn.execute(f'DROP TRIGGER IF EXISTS "{name}"')
        conn.close()
