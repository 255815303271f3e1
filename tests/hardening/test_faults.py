"""Faults through real processes and sockets (issue 6, item 3).

A connector is a subprocess (``_faults.py``: the real connector with one fault in ``Fetch``) and
the gateway a real grpc.aio server; the requester is a synchronous gRPC client. Each fault must
end the call with a sensible status, release nothing, and leave one ``error`` (or no) entry on
the audit log; the audit store failing (PostgreSQL unreachable, SQLite disk full) fails closed
with ``UNAVAILABLE``; SIGTERM to ``pgw gateway serve`` drains the calls in flight.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import grpc
import pytest
from pgw_crash_harness import PG_ENV, pg_schema
from pgw_hardening_faults import FaultConnector, TcpProxy, read_port
from pgw_it_harness import (
    LoopThread,
    RawData,
    Stack,
    code_of,
    isolated_cfg,
    metadata,
    read_audit,
    selections_of,
    start_stack,
)

import connectors.sdk._server as connector_server
import gateway.dispatch
import gateway.server
from gateway.config import PARTNERS, Config
from gateway.pb.pgw.v1 import connector_pb2, gateway_pb2, gateway_pb2_grpc

AUDIT_DOWN = "the audit log cannot be written; nothing was released, retry later"
BANK = {"bank": ["income_avg_12m"]}
MIB = 1 << 20
UPSTREAM = "a partner answered outside the release spec; nothing was released"


@pytest.fixture
def fault(base_cfg: Config, workdir: Path) -> Iterator[Callable[..., FaultConnector]]:
    started: list[FaultConnector] = []

    def start(mode: str, arg: str = "", partner: str = "bank") -> FaultConnector:
        fc = FaultConnector(workdir / "pgw.toml", partner, mode, arg)
        started.append(fc)
        return fc

    yield start
    for fc in started:
        fc.close()


def entries_after(stack: Stack, before: int, want: int, within: float = 5.0) -> list[Any]:
    """Entries after ``before`` once ``want`` are there (audits may trail the status)."""
    deadline = time.monotonic() + within
    while len(stack.audit()) - before < want and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.1)
    return stack.audit()[before:]


def no_value_of(raw: RawData, people: list[str], text: str) -> None:
    for person in people:
        assert person not in text
        assert repr(raw.row("bank", person)["income_avg_12m"]) not in text


def call_tasks(loop: LoopThread) -> int:
    async def count() -> int:
        return len(asyncio.all_tasks())
    return loop.run(count())


def test_a_hanging_connector_is_deadline_exceeded_audited_and_leaks_nothing(
        fault: Any, gateway_for: Any, raw: RawData, loop: LoopThread) -> None:
    hang = fault("hang")
    stack: Stack = gateway_for({"bank": hang.address}, request_timeout_s=1.0)
    people = raw.in_all[:3]
    tasks = call_tasks(loop)
    before = len(stack.audit())
    started = time.monotonic()
    err = code_of(lambda: stack.query("loan-eligibility", people, BANK, timeout=30))
    elapsed = time.monotonic() - started
    assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED, (err.code(), err.details())
    assert 0.9 < elapsed < 3.0, elapsed   # bounded by [gateway] request_timeout_s, not the client
    no_value_of(raw, people, err.details() or "")
    entries = entries_after(stack, before, 1)
    assert [(e.decision, e.released) for e in entries] == [("error", ())]
    assert "bank" in entries[0].reason
    time.sleep(0.2)
    assert call_tasks(loop) <= tasks, "a task of the call outlived it"


def test_queries_coalesced_behind_a_hanging_call_hang_too(
        fault: Any, gateway_for: Any, raw: RawData) -> None:
    """Specs that queue behind a call in flight go out together as one FetchBatch when it
    ends: the fault holds for them too, and each query ends at its own deadline."""
    hang = fault("hang")
    stack: Stack = gateway_for({"bank": hang.address}, request_timeout_s=1.0)
    before = len(stack.audit())

    def query(people: list[str]) -> Any:
        request = gateway_pb2.QueryRequest(purpose="loan-eligibility", subjects=people,
                                           selections=selections_of(BANK))
        return stack.stub.Query.future(request, metadata=metadata(stack.token()), timeout=30)
    first = query(raw.in_all[5:6])
    time.sleep(0.5)  # the first spec is out; these two queue behind it, then go as one batch
    later = [query(raw.in_all[6:7]), query(raw.in_all[7:8])]
    for future in [first, *later]:
        with pytest.raises(grpc.RpcError) as info:
            future.result()
        assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED, info.value.details()
    entries = entries_after(stack, before, 3)
    assert [(e.decision, e.released) for e in entries] == [("error", ())] * 3


def test_a_connector_killed_mid_call_is_unavailable_and_audited(
        fault: Any, gateway_for: Any, raw: RawData) -> None:
    hang = fault("hang")
    stack: Stack = gateway_for({"bank": hang.address})
    people = raw.in_all[3:5]
    before = len(stack.audit())
    request = gateway_pb2.QueryRequest(purpose="loan-eligibility", subjects=people,
                                       selections=selections_of(BANK))
    future = stack.stub.Query.future(request, metadata=metadata(stack.token()), timeout=30)
    time.sleep(0.8)            # the signed spec is at the connector, which sits on it
    assert not future.done()
    started = time.monotonic()
    hang.kill()
    with pytest.raises(grpc.RpcError) as info:
        future.result()
    assert time.monotonic() - started < 5
    err = info.value
    assert err.code() == grpc.StatusCode.UNAVAILABLE, (err.code(), err.details())
    assert "bank" in (err.details() or "")
    no_value_of(raw, people, err.details() or "")
    entries = entries_after(stack, before, 1)
    assert [(e.decision, e.released) for e in entries] == [("error", ())]


def test_a_garbage_answer_is_refused_audited_and_nothing_released(
        fault: Any, gateway_for: Any, raw: RawData) -> None:
    """Bytes that are not a FetchResponse (grpc.aio hands the gateway ``None`` for them): the
    partner answered outside its spec, so INTERNAL with the fixed upstream-violation message
    (never a stack trace), one ``error`` entry, nothing released."""
    bad = fault("garbage")
    stack: Stack = gateway_for({"bank": bad.address})
    people = raw.in_all[5:8]
    before = len(stack.audit())
    err = code_of(lambda: stack.query("loan-eligibility", people, BANK, timeout=10))
    assert err.code() == grpc.StatusCode.INTERNAL, (err.code(), err.details())
    assert err.details() == UPSTREAM
    entries = entries_after(stack, before, 1)
    assert [(e.decision, e.released) for e in entries] == [("error", ())]
    assert "bank" in entries[0].reason


def test_message_sizes_are_bounded_on_every_hop() -> None:
    """One limit, 16 MiB, set explicitly on both sides of both hops (gRPC's default is 4 MiB)."""
    assert gateway.server.MAX_MESSAGE == 16 * MIB      # requester -> gateway (both directions)
    assert gateway.dispatch.MAX_MESSAGE == 16 * MIB    # gateway's connector channels
    assert connector_server.MAX_MESSAGE == 16 * MIB    # connector server (both directions)


def test_an_oversized_answer_is_resource_exhausted_and_nothing_released(
        fault: Any, gateway_for: Any, raw: RawData) -> None:
    """The connector (its own send limit lifted) answers 17 MiB: the gateway's receive limit
    stops it; RESOURCE_EXHAUSTED (ask for less), one error entry, nothing released."""
    big = fault("oversized", "17")
    stack: Stack = gateway_for({"bank": big.address})
    people = raw.in_all[8:10]
    before = len(stack.audit())
    err = code_of(lambda: stack.query("loan-eligibility", people, BANK, timeout=30))
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, (err.code(), err.details())
    assert "bank" in (err.details() or "")
    no_value_of(raw, people, err.details() or "")
    entries = entries_after(stack, before, 1)
    assert [(e.decision, e.released) for e in entries] == [("error", ())]


def test_an_answer_just_under_the_limit_but_outside_the_spec_is_refused(
        fault: Any, gateway_for: Any, raw: RawData) -> None:
    """15 MiB arrives, but its undeclared padding field is caught by the answer check."""
    big = fault("oversized", "15")
    stack: Stack = gateway_for({"bank": big.address})
    before = len(stack.audit())
    err = code_of(lambda: stack.query("loan-eligibility", raw.in_all[:2], BANK, timeout=30))
    assert err.code() == grpc.StatusCode.INTERNAL, (err.code(), err.details())
    assert err.details() == UPSTREAM
    entries = entries_after(stack, before, 1)
    assert [(e.decision, e.released) for e in entries] == [("error", ())]


def test_oversized_requests_are_refused_at_the_gateway_and_the_connector(
        stack: Stack) -> None:
    big = "x" * (17 * MIB)
    err = code_of(lambda: stack.stub.Query(
        gateway_pb2.QueryRequest(purpose=big), metadata=metadata(stack.token()), timeout=30))
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, (err.code(), err.details())
    ch = stack.channel(stack.connector_address("bank"))
    fetch = ch.unary_unary("/pgw.v1.ConnectorService/Fetch",
                           request_serializer=connector_pb2.FetchRequest.SerializeToString,
                           response_deserializer=connector_pb2.FetchResponse.FromString)
    request = connector_pb2.FetchRequest(
        signed_spec=connector_pb2.SignedReleaseSpec(spec=big.encode()))
    err = code_of(lambda: fetch(request, timeout=30))
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, (err.code(), err.details())
    # and the gateway still serves
    assert stack.explain("loan-eligibility", BANK).verdict


# -- the audit store ---------------------------------------------------------------------------

def _proxied(dsn: str, port: int) -> str:
    parts = urlsplit(dsn)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))


@pytest.mark.postgres
def test_postgresql_unreachable_fails_closed_and_recovers(loop: LoopThread, base_cfg: Config,
                                                          tmp_path: Path, raw: RawData) -> None:
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} not set: this test needs a PostgreSQL server")
    target = urlsplit(base)
    with pg_schema(base) as dsn:
        proxy = TcpProxy(loop, (target.hostname or "127.0.0.1", target.port or 5432))
        cfg = isolated_cfg(base_cfg, tmp_path)
        stack = start_stack(loop, dataclasses.replace(cfg, audit_dsn=_proxied(dsn, proxy.port)))
        try:
            people = raw.in_all[:3]
            first = stack.query("loan-eligibility", people, BANK)
            assert first.results
            size = first.receipt.leaf_index + 1
            proxy.cut()
            for call in (lambda: stack.query("loan-eligibility", people, BANK),
                         lambda: stack.query("loan-eligibility", people, {"bank": ["card_number"]}),
                         lambda: stack.explain("loan-eligibility", BANK)):
                err = code_of(call)
                assert err.code() == grpc.StatusCode.UNAVAILABLE, (err.code(), err.details())
                assert err.details() == AUDIT_DOWN
            proxy.restore()
            again = stack.query("loan-eligibility", people, BANK)
            assert [r.values for r in again.results] == [r.values for r in first.results]
            entries = stack.audit()
            assert again.receipt.leaf_index == len(entries) - 1
            assert [e.decision for e in entries[size:]] == ["allow"]  # the refused left nothing
        finally:
            stack.close()
            proxy.close()


def test_sqlite_disk_full_fails_closed_and_recovers(gateway_for: Any, stack: Stack,
                                                    raw: RawData) -> None:
    """A real SQLITE_FULL ("database or disk is full"), by capping the gateway's own audit
    connection with ``PRAGMA max_page_count`` at its current size (no root, no tmpfs)."""
    # a gateway with its own audit file, dialling the shared stack's (real) connectors
    stack = gateway_for({p: stack.connector_address(p) for p in PARTNERS})
    store = stack.gateway.closers[-1].__self__.store   # the AuditLog's own store
    people = raw.in_all[:2]
    first = stack.query("loan-eligibility", people, {"education": ["highest_degree"]})
    pages = _pragma(store, "PRAGMA page_count")
    _pragma(store, f"PRAGMA max_page_count = {pages}")
    answered, refused = 0, []
    for _ in range(400):   # what still fits in the last page is answered, then the disk is full
        try:
            stack.query("loan-eligibility", people, {"education": ["highest_degree"]})
            answered += 1
        except grpc.RpcError as err:
            refused.append(err)
            if len(refused) == 3:
                break
    assert len(refused) == 3, "the capped store never filled up"
    for err in refused:
        assert err.code() == grpc.StatusCode.UNAVAILABLE, (err.code(), err.details())
        assert err.details() == AUDIT_DOWN
    size = len(stack.audit())
    assert size == first.receipt.leaf_index + 1 + answered   # refused calls left nothing
    _pragma(store, "PRAGMA max_page_count = 1073741823")
    again = stack.query("loan-eligibility", people, {"education": ["highest_degree"]})
    assert again.receipt.leaf_index == size


def _pragma(store: Any, sql: str) -> int:
    with store._lock:
        row = store._conn.execute(sql).fetchone()
    return int(row[0]) if row else 0


# -- clean shutdown ----------------------------------------------------------------------------

def test_sigterm_drains_in_flight_calls_refuses_new_ones_and_exits_0(
        fault: Any, workdir: Path, tmp_path: Path, raw: RawData, stack: Stack) -> None:
    slow = fault("slow", "1.5")
    text = (workdir / "pgw.toml").read_text()
    text = re.sub(r'(?m)^dsn = \S+', f'dsn = "{tmp_path / "drain-audit.db"}"', text)
    text = re.sub(r'(\[connectors\.bank\]\naddress = )"[^"]+"', rf'\1"{slow.address}"', text)
    config = workdir / f"pgw-drain-{os.getpid()}.toml"
    config.write_text(text)
    log = tmp_path / "gateway.log"
    with log.open("ab") as err_log:
        proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "gateway", "serve",
                                 "--config", str(config), "--listen", "127.0.0.1:0"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err_log)
    try:
        port = read_port(proc, "gateway", 60, log)
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        stub = gateway_pb2_grpc.GatewayServiceStub(channel)
        md = metadata(stack.token())
        request = gateway_pb2.QueryRequest(purpose="loan-eligibility",
                                           subjects=raw.in_all[:2],
                                           selections=selections_of(BANK))
        stub.Explain(gateway_pb2.ExplainRequest(purpose="loan-eligibility",
                                                selections=selections_of(BANK)),
                     metadata=md, timeout=30, wait_for_ready=True)
        in_flight = [stub.Query.future(request, metadata=md, timeout=30) for _ in range(6)]
        time.sleep(0.5)                       # all six are at the slow connector
        assert not any(f.done() for f in in_flight)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        late = code_of(lambda: stub.Query(request, metadata=md, timeout=5))
        assert late.code() == grpc.StatusCode.UNAVAILABLE, (late.code(), late.details())
        answers = [f.result() for f in in_flight]     # drained: every one completes OK
        assert all(a.receipt.entry for a in answers)
        assert proc.wait(30) == 0, log.read_text()[-3000:]
        channel.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        config.unlink(missing_ok=True)
    entries = read_audit(f"sqlite://{tmp_path / 'drain-audit.db'}")
    ids = {a.request_id for a in answers}
    assert {e.request_id for e in entries if e.kind == "query"} == ids
    assert {e.decision for e in entries if e.kind == "query"} == {"allow"}
