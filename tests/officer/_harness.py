"""Harness for the officer's tests: real stacks on both audit backends, raw-SQL tampering, the CLI.

* :class:`LoopThread` owns an asyncio loop in a background thread (there is no pytest-asyncio);
  the gateway and connectors run there, the tests talk to them over synchronous gRPC channels.
* :func:`fresh_store` yields an empty audit store: a SQLite file, or a uniquely named PostgreSQL
  schema selected through the DSN's ``search_path`` (the approach of ``tests/audit/conftest.py``)
  and dropped afterwards.
* :class:`Target` runs admin SQL on a store *outside* the product, as an attacker with database
  access would; :func:`snapshot` / :func:`clone` copy a real log into a fresh store.
* :func:`write_config` writes a ``pgw.toml`` beside the shared one, pointing at another store.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Coroutine, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import grpc

from gateway.audit import AuditEntry, NoteSigner
from gateway.audit._log import AuditLog
from gateway.audit._store import open_store
from gateway.auth import DevIssuer
from gateway.config import PARTNERS, Config
from gateway.keys import load_private_key
from gateway.pb.pgw.v1 import audit_pb2, audit_pb2_grpc, common_pb2, gateway_pb2, gateway_pb2_grpc
from gateway.server import Running, start_gateway, start_partner

T = TypeVar("T")
PG_ENV = "PGW_TEST_PG_DSN"
PG_SKIP = f"{PG_ENV} not set: the PostgreSQL variants need a server (e.g. postgresql://postgres@127.0.0.1:5432/test)"
HPF = "hpf-changzhou"
HOUSING = "housing-bureau"
OFFICERS = "pgw-officers"
LOAN = {"social-security": ["contribution_months", "insured_status"],
        "education": ["highest_degree"], "bank": ["income_avg_12m"]}
WITHDRAWAL = {"social-security": ["insured_status", "name"]}
STATISTICS = {"social-security": ["district_code"]}


class LoopThread:
    """An asyncio loop in a daemon thread; ``run`` executes a coroutine there and waits."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name="pgw-officer-loop", daemon=True)
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


# ---------------------------------------------------------------- stores and raw SQL


@dataclasses.dataclass(frozen=True)
class Target:
    """One audit store: its backend, the DSN the product uses, and an admin SQL channel."""

    kind: str  # "sqlite" or "postgres"
    dsn: str

    def sql(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement (``?`` placeholders) outside the product; return its rows."""
        if self.kind == "sqlite":
            conn = sqlite3.connect(self.dsn.removeprefix("sqlite://"), isolation_level=None)
            try:
                return conn.execute(statement, tuple(params)).fetchall()
            finally:
                conn.close()
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            cur = conn.execute(statement.replace("?", "%s").encode(), tuple(params))
            return cur.fetchall() if cur.description else []

    def entry(self, index: int) -> bytes:
        return bytes(self.sql("SELECT entry FROM audit_entries WHERE idx = ?", (index,))[0][0])

    def set_entry(self, index: int, data: bytes) -> None:
        self.sql("UPDATE audit_entries SET entry = ? WHERE idx = ?", (data, index))

    def note(self, size: int) -> str:
        return str(self.sql("SELECT note FROM audit_checkpoints WHERE size = ?", (size,))[0][0])

    def set_note(self, size: int, note: str) -> None:
        self.sql("UPDATE audit_checkpoints SET note = ? WHERE size = ?", (note, size))


def _pg_base() -> str | None:
    return os.environ.get(PG_ENV) or None


@contextlib.contextmanager
def fresh_store(kind: str, where: Path) -> Iterator[Target]:
    """An empty store of ``kind`` (tables are made when the product first opens it)."""
    if kind == "sqlite":
        where.mkdir(parents=True, exist_ok=True)
        yield Target("sqlite", f"sqlite://{where / f'audit-{uuid.uuid4().hex[:8]}.db'}")
        return
    base = _pg_base()
    assert base, PG_SKIP
    import psycopg

    schema = f"pgw_officer_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}".encode())
    dsn = f"{base}{'&' if '?' in base else '?'}options={quote(f'-csearch_path={schema}')}"
    try:
        yield Target("postgres", dsn)
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(b"SET lock_timeout = '20s'")
            conn.execute(f"DROP SCHEMA {schema} CASCADE".encode())


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """A log's content up to ``size``: entries, subject sets, checkpoint notes, cosignatures."""

    hash_name: str
    origin: str
    entries: list[bytes]
    notes: dict[int, str]
    cosigs: dict[int, list[tuple[str, str]]]
    subject_sets: dict[int, bytes] = dataclasses.field(default_factory=dict)

    @property
    def size(self) -> int:
        return len(self.entries)


def snapshot(dsn: str, size: int) -> Snapshot:
    store = open_store(dsn)
    try:
        profile = store.profile()
        assert profile is not None
        sizes = [s for s in store.checkpoint_sizes() if s <= size]
        notes = {s: store.checkpoint_at(s) or "" for s in sizes}
        sets = {i: store.read_subject_set(i) or b"" for i in store.subject_set_indexes(0, size)}
        return Snapshot(profile[0], profile[1], store.read(0, size), notes,
                        {s: store.cosignatures(s) for s in sizes}, sets)
    finally:
        store.close()


def clone(snap: Snapshot, dsn: str) -> None:
    """Write ``snap`` into the empty store at ``dsn`` through the product's store API."""
    store = open_store(dsn)
    try:
        store.create(snap.hash_name, snap.origin)
        store.append_batch(snap.entries, snap.subject_sets)
        for size, note in snap.notes.items():
            store.save_checkpoint(size, note)
            for witness, line in snap.cosigs[size]:
                store.add_cosignature(size, witness, line)
    finally:
        store.close()


def write_config(base: Config, dsn: str, *, quorum: int | None = None) -> Path:
    """A config file beside ``base`` (so relative paths still resolve) using another store."""
    text = base.path.read_text()
    text, n = re.subn(r'(?m)^dsn = .*$', f'dsn = "{dsn}"', text)
    assert n == 1
    if quorum is not None:
        text, n = re.subn(r"(?m)^witness_quorum = .*$", f"witness_quorum = {quorum}", text)
        assert n == 1
    path = base.path.parent / f"pgw-{uuid.uuid4().hex[:8]}.toml"
    path.write_text(text)
    return path


def entry(n: int, *, org: str = "forger", purpose: str = "rewrite") -> bytes:
    """A valid, canonical audit entry (for logs built directly, without a gateway)."""
    return AuditEntry(
        time=f"2026-01-01T00:00:{n % 60:02d}.{n:06d}Z", request_id=f"r{n:04d}", kind="query",
        requester_org=org, requester_subject="s", role="requester", purpose=purpose,
        agreements=(), partners=("bank",), released=(), subject_count=0, subject_pseudonyms=(),
        decision="allow", reason="ok", response_digest="").encode()


def log_signer(cfg: Config) -> NoteSigner:
    return NoteSigner(cfg.audit_origin, load_private_key(cfg.log_key))


async def append_entries(dsn: str, cfg: Config, entries: Iterable[bytes],
                         signer: NoteSigner | None = None) -> list[str]:
    """Append ``entries`` one batch each to the log at ``dsn``; return every checkpoint note."""
    log = await AuditLog.open(dsn, cfg.audit_hash, cfg.audit_origin, signer or log_signer(cfg))
    try:
        return [(await log.append(e)).checkpoint_note for e in entries]
    finally:
        await log.aclose()


# ---------------------------------------------------------------- a running stack


def metadata(token: str | None) -> list[tuple[str, str]]:
    return [] if token is None else [("authorization", f"Bearer {token}")]


@dataclasses.dataclass
class Stack:
    """A running gateway and its three connectors, with synchronous client stubs."""

    loop: LoopThread
    kind: str
    cfg: Config                      # live: connector addresses are the running ports
    config_file: Path                # the same, on disk, for the CLI
    gateway: Running | None
    partners: dict[str, Running]
    issuer: DevIssuer
    _channels: list[grpc.Channel] = dataclasses.field(default_factory=list)

    @property
    def address(self) -> str:
        assert self.gateway is not None
        return f"127.0.0.1:{self.gateway.port}"

    def channel(self, address: str | None = None) -> grpc.Channel:
        ch = grpc.insecure_channel(address or self.address)
        self._channels.append(ch)
        return ch

    def token(self, org: str = HPF, role: str = "requester", subject: str = "officer-7") -> str:
        return self.issuer.issue(org, [role], subject=subject)

    def auditor(self) -> str:
        return self.token(OFFICERS, "auditor", "dpo-1")

    @property
    def audit_stub(self) -> audit_pb2_grpc.AuditServiceStub:
        return audit_pb2_grpc.AuditServiceStub(self.channel())

    def query(self, purpose: str, subjects: Sequence[str], selections: dict[str, list[str]], *,
              org: str = HPF) -> gateway_pb2.QueryResponse:
        request = gateway_pb2.QueryRequest(purpose=purpose, subjects=list(subjects), selections=[
            common_pb2.Selection(partner=p, fields=f) for p, f in selections.items()])
        stub = gateway_pb2_grpc.GatewayServiceStub(self.channel())
        return stub.Query(request, metadata=metadata(self.token(org)), timeout=20)

    def explain(self, purpose: str, selections: dict[str, list[str]]) -> None:
        request = gateway_pb2.ExplainRequest(purpose=purpose, subject_count=1, selections=[
            common_pb2.Selection(partner=p, fields=f) for p, f in selections.items()])
        gateway_pb2_grpc.GatewayServiceStub(self.channel()).Explain(
            request, metadata=metadata(self.token()), timeout=20)

    def checkpoint(self) -> audit_pb2.GetCheckpointResponse:
        return self.audit_stub.GetCheckpoint(audit_pb2.GetCheckpointRequest(),
                                             metadata=metadata(self.auditor()), timeout=10)

    def settle(self, timeout: float = 15.0) -> audit_pb2.GetCheckpointResponse:
        """Wait until the latest checkpoint covers the whole store and every witness cosigned."""
        deadline = time.monotonic() + timeout
        while True:
            cp = self.checkpoint()
            store = open_store(self.cfg.audit_dsn)
            try:
                stored = store.size()
            finally:
                store.close()
            if cp.size == stored and len(cp.witnesses) == len(PARTNERS):
                return cp
            if time.monotonic() > deadline:
                raise AssertionError(f"log not cosigned in {timeout}s: checkpoint {cp.size} of "
                                     f"{stored}, witnesses {list(cp.witnesses)}")
            time.sleep(0.05)

    def restart_gateway(self) -> None:
        assert self.gateway is not None
        self.loop.run(self.gateway.stop(0.5))
        self.gateway = None
        self.gateway = self.loop.run(start_gateway(self.cfg, listen="127.0.0.1:0"))

    def close(self) -> None:
        for ch in self._channels:
            ch.close()
        self._channels.clear()
        if self.gateway is not None:
            self.loop.run(self.gateway.stop(0.5))
            self.gateway = None
        for running in self.partners.values():
            self.loop.run(running.stop(0.5))
        self.partners.clear()


def start_stack(loop: LoopThread, base: Config, kind: str, dsn: str, state_dir: Path,
                *, witness_interval_ms: int = 50) -> Stack:
    """Three connectors (own witness state) and a gateway on ``dsn``, all on ephemeral ports."""
    state_dir.mkdir(parents=True, exist_ok=True)
    cfg = dataclasses.replace(
        base, audit_dsn=dsn, witness_interval_ms=witness_interval_ms,
        connectors={p: dataclasses.replace(c, witness_state=state_dir / f"witness-{p}.json")
                    for p, c in base.connectors.items()})

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
    return Stack(loop, kind, live, write_config(base, dsn), gateway, partners, issuer)


# ---------------------------------------------------------------- the CLI, in-process

_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d.* \[\w+\s*\] ")


def _strip_logs(text: str) -> str:
    """Drop the in-process servers' own log lines (JSON lines, or structlog's console form)."""
    return "".join(line for line in text.splitlines(keepends=True)
                   if not (_LOG_LINE.match(line) or _is_json_log(line)))


def _is_json_log(line: str) -> bool:
    if not line.startswith("{"):
        return False
    try:
        doc = json.loads(line)
    except ValueError:
        return False
    return isinstance(doc, dict) and "event" in doc and "level" in doc


def cli(capsys: Any, *argv: str) -> tuple[int, str, str]:
    """Run ``pgw ARGV`` in-process; return (exit status, stdout, stderr) without server logs."""
    from gateway.cli import main

    capsys.readouterr()
    try:
        rc = main(list(argv))
    except SystemExit as exc:  # argparse: --help, usage errors
        rc = int(exc.code or 0)
    captured = capsys.readouterr()
    return rc, _strip_logs(captured.out), _strip_logs(captured.err)
