#!/usr/bin/env python3
"""Benchmark the authorized query path against a bare gRPC pass-through with the same topology.

    python bench/query_path.py                                 # 10 s per phase, 32 in flight
    python bench/query_path.py --concurrency 8,32,64           # one row pair per level
    python bench/query_path.py --seconds 5 --profile    # plus a cProfile of the server process
    python bench/query_path.py --layout split           # connectors (backs) in their own process

For every concurrency level, in one run:

Phase A (pgw)
    The three connectors (social security, education, bank) and the gateway run in ONE server
    process (as ``pgw demo`` runs them, loopback ephemeral ports, SQLite audit log in WAL with
    group commit). The load generator runs in ANOTHER process and keeps ``--concurrency``
    ``Query`` calls in flight (loan-eligibility: social-security.contribution_months,
    social-security.insured_status, education.highest_degree, bank.income_avg_12m,
    bank.overdue_flag), cycling over real subject ids, for ``--seconds`` after a warm-up.

Phase B (pass-through baseline)
    A bare grpc.aio "front" server receives a request of the same bytes and fans out in parallel
    to three "back" servers (the same hop count as gateway -> 3 connectors); each back answers
    from an in-memory dict with a response of the size the real connector returned. The front
    answers with a response of the size the real gateway returned. No auth, policy, audit or
    signing. Same client process, same concurrency, same duration. Message sizes come from one
    calibration query through pgw in Phase A (the gateway's connector calls are wrapped for that
    one call only, never during the measurement).

Process layout on this 2-core machine: orchestrator (idle while it waits) + server process +
client process, all started with the ``spawn`` method (grpcio is not fork-safe). The server
process holds one asyncio event loop, so its Python work is bound to one core whatever the core
count; the client gets the other core, so its own CPU does not steal from the server's event
loop. gRPC's C-core threads and SQLite worker threads of both processes share the two cores.
Only one system runs at a time.

``--layout split`` moves the connectors (Phase A) and the backs (Phase B) into a second server
process, as deployed (each partner runs its connector in its own network): the gateway's (the
front's) event loop then carries only its own work. Server CPU counts both processes.

Targets (DESIGN: performance lives in bench/): pgw throughput >= 0.6x the pass-through's, and
pgw p99 <= 3x its p50. The script prints PASS/MISS per target and always exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import dataclasses
import io
import itertools
import math
import multiprocessing
import multiprocessing.connection
import os
import pstats
import re
import resource
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from _common import LatencySummary, format_table, machine_description

ORG = "hpf-changzhou"
PURPOSE = "loan-eligibility"
LOAN_FIELDS: tuple[tuple[str, str], ...] = (
    ("social-security", "contribution_months"), ("social-security", "insured_status"),
    ("education", "highest_degree"), ("bank", "income_avg_12m"), ("bank", "overdue_flag"))
SEED = 20261125
QUERY_METHOD = "/pgw.v1.GatewayService/Query"
FRONT_METHOD = "/pgw.bench.PassThrough/Query"
BACK_METHOD = "/pgw.bench.Back/Fetch"
MAX_MESSAGE = 16 * 1024 * 1024
GRPC_OPTIONS = [("grpc.max_receive_message_length", MAX_MESSAGE),
                ("grpc.max_send_message_length", MAX_MESSAGE)]
TARGET_THROUGHPUT_RATIO = 0.6
TARGET_TAIL_RATIO = 3.0


# --------------------------------------------------------------------------------------------
# Data shared between processes (all picklable)


@dataclass
class Sizes:
    """Serialized sizes (bytes) of one real pgw query, used to shape the baseline's messages."""

    subjects: int = 0
    query_request: int = 0
    query_response: int = 0
    fetch_request: dict[str, int] = field(default_factory=dict)
    fetch_response: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        inner = ", ".join(f"{p} {self.fetch_request[p]}/{self.fetch_response[p]}"
                          for p in sorted(self.fetch_request))
        return (f"request {self.query_request} B, response {self.query_response} B; "
                f"per connector request/response: {inner} B")


@dataclass
class LoadSpec:
    """What the client process sends, where, and for how long."""

    address: str
    method: str
    requests: list[bytes]
    metadata: tuple[tuple[str, str], ...]
    concurrency: int
    warmup_s: float
    seconds: float
    timeout_s: float


@dataclass
class LoadResult:
    """Per-call latencies (s) of the calls that completed inside the measured window."""

    latencies: list[float]
    errors: dict[str, int]
    seconds: float
    response_bytes: int
    total_calls: int = 0  # every completed call, warm-up included (for CPU per call)
    client_cpu_s: float = 0.0  # the client process's CPU over the whole load
    client_wall_s: float = 0.0
    server_cpu_s: float = 0.0  # filled in by the orchestrator from the server's report
    partner_cpu_s: float = 0.0  # layout split: the partner process's share of server_cpu_s


def cpu_seconds() -> float:
    """User + system CPU of this process, all threads (gRPC core, worker threads) included."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class ServerOptions:
    """How the pgw server process runs."""

    config: Path
    log_level: str
    log_file: Path
    profile_out: Path | None
    probe_request: bytes
    metadata: tuple[tuple[str, str], ...]


# --------------------------------------------------------------------------------------------
# Client process


def client_main(conn: multiprocessing.connection.Connection, spec: LoadSpec) -> None:
    """Entry point of the load-generator process: run the load, send back a LoadResult."""
    conn.send(asyncio.run(run_load(spec)))
    conn.close()


async def run_load(spec: LoadSpec) -> LoadResult:
    """Keep ``spec.concurrency`` unary calls in flight on one grpc.aio channel; time each.

    Requests and responses stay opaque bytes (no protobuf work in the client), so the client
    costs the same for both systems. A call counts if it completes inside the window
    ``[start + warmup, start + warmup + seconds]``; no call is started after the window.
    """
    async with grpc.aio.insecure_channel(spec.address, options=GRPC_OPTIONS) as channel:
        await asyncio.wait_for(channel.channel_ready(), timeout=10)
        call = channel.unary_unary(spec.method)
        latencies: list[float] = []
        errors: Counter[str] = Counter()
        response_bytes = 0
        order = itertools.count()
        requests, n = spec.requests, len(spec.requests)
        clock = time.perf_counter
        total = 0
        cpu0, wall0 = cpu_seconds(), clock()
        begin = wall0 + spec.warmup_s
        end = begin + spec.seconds

        async def worker() -> None:
            nonlocal response_bytes, total
            while (t0 := clock()) < end:
                request = requests[next(order) % n]
                try:
                    response = await call(request, metadata=spec.metadata,
                                          timeout=spec.timeout_s)
                    failure = ""
                except grpc.aio.AioRpcError as err:
                    failure = err.code().name
                t1 = clock()
                total += 1
                if begin <= t1 <= end:
                    if failure:
                        errors[failure] += 1
                    else:
                        latencies.append(t1 - t0)
                        response_bytes += len(response)

        await asyncio.gather(*(worker() for _ in range(spec.concurrency)))
        cpu, wall = cpu_seconds() - cpu0, clock() - wall0
    return LoadResult(latencies, dict(errors), spec.seconds, response_bytes, total, cpu, wall)


# --------------------------------------------------------------------------------------------
# Server processes: common control loop


def _wait_for_stop(conn: multiprocessing.connection.Connection) -> asyncio.Future[Any]:
    """A future resolved when the orchestrator writes to ``conn`` (no thread, no polling)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[Any] = loop.create_future()

    def readable() -> None:
        loop.remove_reader(conn.fileno())
        if not done.done():
            done.set_result(conn.recv())

    loop.add_reader(conn.fileno(), readable)
    return done


async def _until_stop(conn: multiprocessing.connection.Connection, ready: Any) -> float:
    """Send ``ready`` to the orchestrator, serve until it says stop; the CPU spent meanwhile."""
    stop = _wait_for_stop(conn)
    conn.send(ready)
    cpu0 = cpu_seconds()
    await stop
    return cpu_seconds() - cpu0


# --------------------------------------------------------------------------------------------
# Phase A server: three connectors + the gateway, one process


def pgw_server_main(conn: multiprocessing.connection.Connection, opts: ServerOptions,
                    partner_ports: dict[str, int] | None) -> None:
    """Entry point of the pgw server process (the gateway, plus the connectors in layout one)."""
    asyncio.run(_pgw_server(conn, opts, partner_ports))


def pgw_partners_main(conn: multiprocessing.connection.Connection, opts: ServerOptions) -> None:
    """Entry point of the partner process of layout split: the three connectors alone."""
    asyncio.run(_pgw_partners(conn, opts))


async def _start_connectors(opts: ServerOptions) -> tuple[Any, dict[str, Any]]:
    from gateway.config import PARTNERS, load_config
    from gateway.server import start_partner

    cfg = load_config(opts.config)
    return cfg, {p: await start_partner(cfg, p, listen="127.0.0.1:0") for p in PARTNERS}


async def _pgw_partners(conn: multiprocessing.connection.Connection, opts: ServerOptions) -> None:
    from gateway.logs import configure_logging

    # noqa below: the server process opens its log once, before its loop serves anything
    with open(opts.log_file, "a", encoding="utf-8") as log_stream:  # noqa: ASYNC230
        configure_logging(opts.log_level, stream=log_stream)
        _cfg, partners = await _start_connectors(opts)
        try:
            cpu = await _until_stop(conn, {p: running.port for p, running in partners.items()})
        finally:
            for running in partners.values():
                await running.stop(1)
    conn.send(cpu)


async def _pgw_server(conn: multiprocessing.connection.Connection, opts: ServerOptions,
                      partner_ports: dict[str, int] | None) -> None:
    from gateway.config import load_config
    from gateway.logs import configure_logging
    from gateway.server import start_gateway

    log_stream = open(opts.log_file, "a", encoding="utf-8")  # noqa: SIM115, ASYNC230 (as above)
    configure_logging(opts.log_level, stream=log_stream)
    partners: dict[str, Any] = {}
    if partner_ports is None:
        cfg, partners = await _start_connectors(opts)
        partner_ports = {p: running.port for p, running in partners.items()}
    else:
        cfg = load_config(opts.config)
    live = dataclasses.replace(cfg, connectors={
        p: dataclasses.replace(c, address=f"127.0.0.1:{partner_ports[p]}")
        for p, c in cfg.connectors.items()})
    gateway = await start_gateway(live, listen="127.0.0.1:0")
    profiler = cProfile.Profile() if opts.profile_out else None
    try:
        sizes = await calibrate(f"127.0.0.1:{gateway.port}", opts.probe_request, opts.metadata)
        stop = _wait_for_stop(conn)
        conn.send((gateway.port, sizes))
        cpu0 = cpu_seconds()
        if profiler:
            profiler.enable()
        await stop
        cpu = cpu_seconds() - cpu0
        if profiler:
            profiler.disable()
            profiler.dump_stats(opts.profile_out)
    finally:
        await gateway.stop(1)
        for running in partners.values():
            await running.stop(1)
        log_stream.close()
    conn.send(cpu)


async def calibrate(address: str, request: bytes,
                    metadata: tuple[tuple[str, str], ...]) -> Sizes:
    """Run one real query and record the serialized size of every message on its path.

    ``ConnectorClients.fetch`` is wrapped for this single call and restored before any load
    arrives. Also checks the query is allowed and answered, so a broken setup fails loudly.
    """
    from gateway.dispatch import ConnectorClients
    from gateway.pb.pgw.v1 import connector_pb2, gateway_pb2

    sizes = Sizes(query_request=len(request))
    original = ConnectorClients.fetch

    async def recording(self: ConnectorClients, partner: str,
                        signed: connector_pb2.SignedReleaseSpec,
                        remaining: float | None) -> connector_pb2.FetchResponse:
        response = await original(self, partner, signed, remaining)
        sizes.fetch_request[partner] = connector_pb2.FetchRequest(signed_spec=signed).ByteSize()
        sizes.fetch_response[partner] = response.ByteSize()
        return response

    ConnectorClients.fetch = recording  # type: ignore[method-assign]
    try:
        async with grpc.aio.insecure_channel(address, options=GRPC_OPTIONS) as channel:
            raw = await channel.unary_unary(QUERY_METHOD)(request, metadata=metadata, timeout=30)
    finally:
        ConnectorClients.fetch = original  # type: ignore[method-assign]
    response = gateway_pb2.QueryResponse.FromString(raw)
    sizes.subjects = len(response.results)
    sizes.query_response = len(raw)
    if not response.results or not any(r.values for r in response.results):
        raise RuntimeError("calibration query returned no values: check the workdir and ids")
    return sizes


# --------------------------------------------------------------------------------------------
# Phase B server: front + three backs, one process


def baseline_server_main(conn: multiprocessing.connection.Connection, sizes: Sizes,
                         subject_ids: list[str], back_ports: dict[str, int] | None) -> None:
    """Entry point of the pass-through server process (the front, plus the backs in layout
    one)."""
    asyncio.run(_baseline_server(conn, sizes, subject_ids, back_ports))


def baseline_backs_main(conn: multiprocessing.connection.Connection, sizes: Sizes,
                        subject_ids: list[str]) -> None:
    """Entry point of the partner process of layout split: the three backs alone."""
    asyncio.run(_baseline_backs(conn, sizes, subject_ids))


def _unary_service(service_method: str,
                   handler: Callable[[bytes, grpc.aio.ServicerContext], Awaitable[bytes]]
                   ) -> grpc.GenericRpcHandler:
    """A generic handler for one bytes-in, bytes-out unary method ``/Service/Method``."""
    service, method = service_method.strip("/").split("/")
    return grpc.method_handlers_generic_handler(
        service, {method: grpc.unary_unary_rpc_method_handler(handler)})


async def _serve(handler: grpc.GenericRpcHandler) -> tuple[grpc.aio.Server, int]:
    server = grpc.aio.server(options=GRPC_OPTIONS)
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port


async def _start_backs(sizes: Sizes, subject_ids: list[str]
                       ) -> tuple[list[grpc.aio.Server], dict[str, int]]:
    """Three back servers answering from in-memory dicts with the real connectors' sizes."""
    per_subject = max(1, sizes.subjects)
    servers: list[grpc.aio.Server] = []
    ports: dict[str, int] = {}
    for partner in sorted(sizes.fetch_response):
        # The back's "database": subject id -> that partner's answer bytes for one subject.
        table = {s.encode(): os.urandom(sizes.fetch_response[partner] // per_subject)
                 for s in subject_ids}

        async def back(request: bytes, context: grpc.aio.ServicerContext,
                       table: dict[bytes, bytes] = table) -> bytes:
            keys = request.split(b"|", 1)[0].split(b",")
            return b"".join(table.get(k, b"") for k in keys)

        server, ports[partner] = await _serve(_unary_service(BACK_METHOD, back))
        servers.append(server)
    return servers, ports


async def _baseline_backs(conn: multiprocessing.connection.Connection, sizes: Sizes,
                          subject_ids: list[str]) -> None:
    servers, ports = await _start_backs(sizes, subject_ids)
    try:
        cpu = await _until_stop(conn, ports)
    finally:
        for server in servers:
            await server.stop(1)
    conn.send(cpu)


async def _baseline_server(conn: multiprocessing.connection.Connection, sizes: Sizes,
                           subject_ids: list[str], back_ports: dict[str, int] | None) -> None:
    from gateway.pb.pgw.v1 import gateway_pb2

    servers: list[grpc.aio.Server] = []
    if back_ports is None:
        servers, back_ports = await _start_backs(sizes, subject_ids)
    channels = {p: grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=GRPC_OPTIONS)
                for p, port in sorted(back_ports.items())}
    calls = {p: ch.unary_unary(BACK_METHOD) for p, ch in channels.items()}
    padding = {p: os.urandom(n) for p, n in sizes.fetch_request.items()}
    front_padding = os.urandom(max(0, sizes.query_response - sum(sizes.fetch_response.values())))

    async def front(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        query = gateway_pb2.QueryRequest.FromString(request)
        key = ",".join(query.subjects).encode()
        remaining = context.time_remaining()
        answers = await asyncio.gather(*(
            call(key + b"|" + padding[p][:max(0, len(padding[p]) - len(key) - 1)],
                 timeout=remaining) for p, call in calls.items()))
        return b"".join(answers) + front_padding

    server, port = await _serve(_unary_service(FRONT_METHOD, front))
    servers.append(server)
    try:
        cpu = await _until_stop(conn, (port, sizes))
    finally:
        for server in servers:
            await server.stop(1)
        for channel in channels.values():
            await channel.close()
    conn.send(cpu)


# --------------------------------------------------------------------------------------------
# Orchestrator


@dataclass
class Workload:
    """Everything the phases share: config, token, requests and subject ids."""

    config: Path
    workdir: Path
    token_metadata: tuple[tuple[str, str], ...]
    requests: list[bytes]
    subject_ids: list[str]


def lift_rate_limits(agreements: Path) -> None:
    """The shipped agreements allow 6,000 loan queries a minute and budget subjects per day; a
    throughput bench needs more. Gateway and connectors read this same copy, so their content
    hashes still agree."""
    for path in agreements.glob("*.yaml"):
        text = re.sub(r"(requests_per_minute|subjects_per_day|queries_per_(?:subject|cohort)"
                      r"_per_day): \d+", r"\1: 10000000", path.read_text())
        path.write_text(text)


def prepare(workdir: Path, people: int, subjects_per_query: int) -> Workload:
    """Create (or reuse) the workdir, mint a token, pre-serialize the Query requests."""
    from connectors.datagen import load_person_ids
    from gateway.auth import DevIssuer
    from gateway.client import selections
    from gateway.config import load_config
    from gateway.pb.pgw.v1 import gateway_pb2
    from gateway.workdir import init_workdir

    config = workdir / "pgw.toml"
    if not config.exists():
        print(f"generating {people:,} synthetic people in {workdir}", flush=True)
        init_workdir(workdir, people=people, seed=SEED)
        lift_rate_limits(workdir / "policies" / "agreements")
    cfg = load_config(config)
    issuer = DevIssuer.load(cfg.dev_issuer_dir, issuer=cfg.issuer, audience=cfg.audience)
    token = issuer.issue(ORG, ["requester"], subject="bench-query-path", ttl_s=6 * 3600)
    everywhere = set(load_person_ids(cfg.connector("bank").database))
    everywhere &= set(load_person_ids(cfg.connector("education").database))
    ids = [i for i in load_person_ids(cfg.connector("social-security").database)
           if i in everywhere]
    if len(ids) < subjects_per_query:
        raise SystemExit(f"only {len(ids)} people are known to all three partners; "
                         f"want at least --subjects {subjects_per_query}")
    chosen = selections(LOAN_FIELDS)
    requests = [gateway_pb2.QueryRequest(purpose=PURPOSE, subjects=ids[i:i + subjects_per_query],
                                         selections=chosen).SerializeToString()
                for i in range(0, len(ids) - subjects_per_query + 1, subjects_per_query)]
    return Workload(config, workdir, (("authorization", f"Bearer {token}"),), requests, ids)


def _start(ctx: Any, target: Callable[..., None], *args: Any
           ) -> tuple[multiprocessing.process.BaseProcess, multiprocessing.connection.Connection]:
    mine, theirs = ctx.Pipe()
    process = ctx.Process(target=target, args=(theirs, *args), daemon=True)
    process.start()
    theirs.close()
    return process, mine


def _recv(conn: multiprocessing.connection.Connection, process: Any, what: str,
          timeout: float) -> Any:
    if not conn.poll(timeout):
        process.kill()
        raise SystemExit(f"{what}: no answer within {timeout:.0f} s")
    try:
        return conn.recv()
    except EOFError:
        raise SystemExit(f"{what}: process exited (code {process.exitcode}); "
                         "see its traceback above") from None


@dataclass
class Phase:
    """One system under test: its server process and, in layout split, its partner process."""

    name: str
    method: str
    server: Callable[..., None]
    server_args: tuple[Any, ...]
    partners: Callable[..., None] | None = None
    partner_args: tuple[Any, ...] = ()


def measure(ctx: Any, phase: Phase, work: Workload, args: argparse.Namespace,
            concurrency: int) -> tuple[LoadResult, Sizes]:
    """Start the phase's processes, run the client process against them, stop them.

    The server CPU reported is that of the server process plus the partner process."""
    started: list[tuple[Any, multiprocessing.connection.Connection, str]] = []
    try:
        ports = None
        if phase.partners is not None:
            proc, conn = _start(ctx, phase.partners, *phase.partner_args)
            started.append((proc, conn, f"{phase.name} partners"))
            ports = _recv(conn, proc, f"{phase.name} partners start", 120)
        proc, conn = _start(ctx, phase.server, *phase.server_args, ports)
        started.append((proc, conn, f"{phase.name} server"))
        port, sizes = _recv(conn, proc, f"{phase.name} server start", 120)
        spec = LoadSpec(f"127.0.0.1:{port}", phase.method, work.requests, work.token_metadata,
                        concurrency, args.warmup, args.seconds, args.timeout)
        client, cconn = _start(ctx, client_main, spec)
        result = _recv(cconn, client, f"{phase.name} client", args.warmup + args.seconds + 120)
        client.join(30)
        for proc, conn, what in reversed(started):
            conn.send("stop")
            cpu = _recv(conn, proc, f"{what} stop", 60)
            result.server_cpu_s += cpu
            if what.endswith("partners"):
                result.partner_cpu_s = cpu
    finally:
        for proc, _conn, _what in started:
            proc.join(30)
            if proc.is_alive():
                proc.kill()
    return result, sizes


def phases(work: Workload, args: argparse.Namespace, sizes: Sizes | None,
           profile_out: Path | None = None) -> tuple[Phase, Phase]:
    """The pgw phase and the pass-through phase in the chosen ``--layout``."""
    opts = _server_options(work, args, profile_out)
    split = args.layout == "split"
    pgw = Phase("pgw", QUERY_METHOD, pgw_server_main, (opts,),
                pgw_partners_main if split else None, (opts,))
    base_args = (sizes or Sizes(), work.subject_ids)
    base = Phase("pass-through", FRONT_METHOD, baseline_server_main, base_args,
                 baseline_backs_main if split else None, base_args)
    return pgw, base


def _server_options(work: Workload, args: argparse.Namespace,
                    profile_out: Path | None) -> ServerOptions:
    return ServerOptions(work.config, args.log_level, work.workdir / "bench-server.log",
                         profile_out, work.requests[0], work.token_metadata)


def _row(concurrency: int, name: str, s: LatencySummary, r: LoadResult) -> list[object]:
    per_call = r.server_cpu_s / r.total_calls * 1e3 if r.total_calls else math.nan
    partners = r.partner_cpu_s / r.total_calls * 1e3 if r.total_calls else math.nan
    client = 100 * r.client_cpu_s / r.client_wall_s if r.client_wall_s else math.nan
    return [concurrency, name, f"{s.throughput:,.0f}", f"{s.p50_ms:.2f}", f"{s.p90_ms:.2f}",
            f"{s.p99_ms:.2f}", f"{s.tail_ratio:.2f}", s.errors,
            f"{per_call:.2f}" + (f" ({partners:.2f})" if r.partner_cpu_s else ""),
            f"{client:.0f}%"]


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def summarise(result: LoadResult) -> LatencySummary:
    return LatencySummary.of(result.latencies, result.seconds, sum(result.errors.values()))


def profile_report(path: Path, top: int) -> str:
    """Top functions by own time, plus own time grouped by package, from a cProfile dump."""
    stats = pstats.Stats(str(path))
    total = sum(v[2] for v in stats.stats.values())  # type: ignore[attr-defined]
    groups: Counter[str] = Counter()
    for (filename, _line, func), (_cc, _nc, tt, _ct, _callers) in \
            stats.stats.items():  # type: ignore[attr-defined]
        groups[_package(filename, func)] += tt
    lines = [f"server process own time (profiled): {total:.2f} s",
             "own time by package:"]
    for name, tt in groups.most_common(14):
        lines.append(f"  {100 * tt / total:5.1f}%  {tt:7.2f} s  {name}")
    out = io.StringIO()
    stats.stream = out  # type: ignore[attr-defined]
    stats.sort_stats("tottime").print_stats(top)
    lines += ["", f"top {top} functions by own time:",
              *(ln for ln in out.getvalue().splitlines()
                if ln.strip() and not ln.lstrip().startswith(("Ordered by", "List reduced")))]
    out = io.StringIO()
    stats.stream = out  # type: ignore[attr-defined]
    stats.sort_stats("cumulative").print_stats(r"(gateway|connectors)/", top)
    lines += ["", "pgw functions by cumulative time (per resumption for coroutines):",
              *(ln for ln in out.getvalue().splitlines()
                if ln.strip() and not ln.lstrip().startswith(("Ordered by", "List reduced")))]
    return "\n".join(lines)


def _package(filename: str, func: str) -> str:
    if filename == "~":
        name = func.strip("<>")
        if "grpc" in name or "cygrpc" in name:
            return "grpc (C extension)"
        if "_sqlite3" in name or "sqlite3" in name:
            return "sqlite3"
        if any(k in name for k in ("Ed25519", "sign", "verify", "_rust", "openssl")):
            return "cryptography (Rust/OpenSSL)"
        if any(k in name for k in ("upb", "google._upb", "protobuf", "SerializeToString",
                                   "ParseFromString", "FromString", "ByteSize")):
            return "protobuf (C)"
        return f"builtins: {name.split(' of ')[0][:40]}"
    parts = Path(filename).parts
    for marker in ("site-packages", "lib-dynload"):
        if marker in parts:
            rest = parts[parts.index(marker) + 1:]
            return rest[0] if rest else marker
    for root in ("gateway", "connectors"):
        if root in parts:
            rest = parts[parts.index(root):]
            return "/".join(rest[:2]) if len(rest) > 2 else root
    if "asyncio" in parts:
        return "asyncio (stdlib)"
    return f"stdlib: {Path(filename).stem}"


def run(args: argparse.Namespace, workdir: Path) -> None:
    levels = args.concurrency
    ctx = multiprocessing.get_context("spawn")
    work = prepare(workdir, args.people, args.subjects)
    print(f"machine: {machine_description()}; load average before the run "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"workdir: {workdir}  ({len(work.subject_ids):,} subjects known to all three partners,"
          f" {len(work.requests):,} distinct requests of {args.subjects} subject(s))")
    print(f"layout {args.layout}; per phase: {args.warmup:g} s warm-up + {args.seconds:g} s "
          "measured; "
          f"server log level {args.log_level}\n", flush=True)
    rows: list[list[object]] = []
    verdicts: list[str] = []
    sizes = Sizes()
    for concurrency in levels:
        pgw_result, sizes = measure(ctx, phases(work, args, None)[0], work, args, concurrency)
        base_result, _ = measure(ctx, phases(work, args, sizes)[1], work, args, concurrency)
        pgw, base = summarise(pgw_result), summarise(base_result)
        rows += [_row(concurrency, "pgw", pgw, pgw_result),
                 _row(concurrency, "pass-through", base, base_result)]
        ratio = pgw.throughput / base.throughput if base.throughput else math.nan
        verdicts.append(
            f"concurrency {concurrency:>3}: throughput pgw/pass-through {ratio:.2f}x "
            f"(target >= {TARGET_THROUGHPUT_RATIO}x) {_verdict(ratio >= TARGET_THROUGHPUT_RATIO)}"
            f"; pgw p99/p50 {pgw.tail_ratio:.2f} (target <= {TARGET_TAIL_RATIO:g}) "
            f"{_verdict(pgw.tail_ratio <= TARGET_TAIL_RATIO)}")
        if pgw_result.errors or base_result.errors:
            verdicts.append(f"  errors: pgw {pgw_result.errors or 'none'}, "
                            f"pass-through {base_result.errors or 'none'}")
        print(f"  done: concurrency {concurrency} (pgw {pgw.throughput:,.0f}/s, "
              f"pass-through {base.throughput:,.0f}/s)", flush=True)
    print(f"\nmessage sizes (from one pgw query of {args.subjects} subject(s)): "
          f"{sizes.describe()}\n")
    print(format_table(["concurrency", "system", "calls/s", "p50 ms", "p90 ms", "p99 ms",
                        "p99/p50", "errors", "srv CPU ms/call", "client CPU"], rows, left=2))
    print("(srv CPU ms/call: server process CPU, all threads, per completed call; in layout "
          "split, in brackets, the part spent in the partner process; client CPU: "
          "load generator's CPU / wall time, 100% = one core)")
    print()
    print("\n".join(verdicts))
    if args.profile:
        out = args.profile_out or workdir / "query_path.pstats"
        concurrency = levels[len(levels) // 2]
        prof, _ = measure(ctx, phases(work, args, None, out)[0], work, args, concurrency)
        p = summarise(prof)
        print(f"\n== cProfile of the pgw server process, concurrency {concurrency} "
              f"(profiled run: {p.throughput:,.0f} calls/s, p50 {p.p50_ms:.2f} ms; not comparable)"
              f"\n   stats saved to {out}\n")
        print(profile_report(out, args.profile_top))


def _levels(text: str) -> list[int]:
    try:
        levels = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"want integers like 32 or 8,32,64, got {text!r}"
                                         ) from None
    if not levels or min(levels) < 1:
        raise argparse.ArgumentTypeError("concurrency levels must be >= 1")
    return levels


def _positive(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"want a positive number, got {text}")
        return value
    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench/query_path.py", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=_positive(float), default=10.0,
                        help="measured seconds per phase and concurrency level (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0,
                        help="unmeasured seconds of load before each measurement (default 2)")
    parser.add_argument("--concurrency", type=_levels, default=[32], metavar="N[,N...]",
                        help="in-flight calls; a comma list runs each level (default 32)")
    parser.add_argument("--subjects", type=_positive(int), default=1,
                        help="subjects (resident ids) per query; the loan agreements allow "
                             "at most 50 (default 1)")
    parser.add_argument("--people", type=_positive(int), default=20_000,
                        help="synthetic people when the workdir is created (default 20000)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="pgw workdir to create or reuse (default: a fresh temp dir, "
                             "deleted afterwards)")
    parser.add_argument("--log-level", default="info",
                        choices=["debug", "info", "warning", "error"],
                        help="server log level; logs go to WORKDIR/bench-server.log (default "
                             "info, as `pgw serve`)")
    parser.add_argument("--layout", choices=["one", "split"], default="one",
                        help="one: gateway and connectors (front and backs) in one server "
                             "process, as `pgw demo` runs them; split: the connectors (backs) "
                             "in a second process, as deployed (default one)")
    parser.add_argument("--timeout", type=_positive(float), default=30.0,
                        help="per-call deadline in seconds (default 30)")
    parser.add_argument("--profile", action="store_true",
                        help="after the measurements, run pgw once more (middle concurrency "
                             "level) under cProfile and print the top costs")
    parser.add_argument("--profile-out", type=Path, default=None,
                        help="where to save the cProfile stats (default WORKDIR/query_path.pstats, "
                             "or $TMPDIR/query_path.pstats with the default temp workdir)")
    parser.add_argument("--profile-top", type=int, default=25,
                        help="functions to list from the profile (default 25)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.subjects > 50:
        print("note: --subjects above 50 exceeds the loan agreements' limit; pgw will refuse",
              file=sys.stderr)
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        run(args, args.workdir.resolve())
    else:
        with tempfile.TemporaryDirectory(prefix="pgw-bench-query-") as tmp:
            if args.profile and args.profile_out is None:
                args.profile_out = Path(tempfile.gettempdir()) / "query_path.pstats"
            run(args, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
