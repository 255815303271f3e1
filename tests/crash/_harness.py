"""Kill -9 rig for the whole gateway: real processes, real load, SIGKILL, then check the log.

Shared by ``tests/crash/test_gateway_kill.py`` (registered as the module ``pgw_crash_harness``
by ``tests/crash/conftest.py``) and ``bench/crash.py`` (loaded from this file by path), so the
test and the benchmark run exactly the same loop.

:class:`CrashRig` lays out a work directory with ``init_workdir``, points its ``[audit] dsn`` at a
fresh SQLite file or a fresh PostgreSQL schema, and starts the three connectors once as
``pgw connector serve`` subprocesses. Each :meth:`CrashRig.cycle` then

1. starts ``pgw gateway serve`` as a subprocess on an ephemeral port and waits for grpc.health;
2. drives ``concurrency`` workers that each send loan-eligibility queries back to back;
3. SIGKILLs the gateway at a random moment 50-400 ms after the first answer (or, for an
   ``early`` cycle, at a random moment of its start-up: imports, log rebuild, recovery
   checkpoint) and records every ``(request_id, leaf_index, entry, checkpoint)`` that got an OK;
4. checks, from a second read-side connection, that each of those entries is in the store at its
   receipt's leaf index, byte for byte, and that each receipt verifies offline.

Only a gateway that is alive can refuse a call; so any call failing before the kill, or failing
afterwards with an error the gateway made (google.rpc details, a request id), fails the cycle.
The work directory's agreements get a huge ``requests_per_minute`` (rate refusals are not what
this rig tests), and each gateway's log (``logs/gateway-NNNN.log``, with
``PGW_LOG_TRACEBACKS=1``) is quoted in any failure about that gateway.

:meth:`CrashRig.final_check` first verifies the log *as the last crash left it* (everything must
hold except, at most, the one finding the design allows: entries of a batch that was committed
but never acknowledged sitting after the latest checkpoint), then restarts the gateway once
(``AuditLog.open`` covers such a tail with a new checkpoint), serves a few queries, stops it with
SIGTERM (its last witnessing round cosigns the final checkpoint) and requires: every answered
request in the log at its leaf index, entries dense, decodable and with unique request ids, every
receipt's checkpoint a prefix of the final tree, and ``pgw audit verify`` exiting 0 with the
configured witness quorum.

Witnessing stays on (``witness_quorum = 2``, the shipped default, with rounds every 100 ms) so the
crashes also land in the middle of cosigning rounds and the witnesses' consistency checks must
survive gateway restarts; the connectors serve the queries anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import select
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from connectors.datagen import load_person_ids
from gateway.audit import AuditEntry, Checkpoint, MerkleTree, NoteVerifier, get_hasher, open_note
from gateway.audit._offline import verify_store
from gateway.audit._store import AuditStore, iter_entries, open_store
from gateway.auth import DevIssuer
from gateway.client import GatewayClient
from gateway.config import PARTNERS, Config, load_config
from gateway.keys import load_public_key
from gateway.pb.pgw.v1 import common_pb2
from gateway.receipts import ReceiptError, verify_receipt
from gateway.workdir import BASE_PORT, init_workdir

__all__ = ["PG_ENV", "Answer", "CrashRig", "CycleResult", "FinalReport", "pg_schema"]

PG_ENV = "PGW_TEST_PG_DSN"
ORG = "hpf-changzhou"
PURPOSE = "loan-eligibility"
FIELDS = [("social-security", "contribution_months"), ("education", "highest_degree"),
          ("bank", "overdue_flag")]
SERVE = "from gateway.cli import main; raise SystemExit(main())"
#: The only finding allowed before the restart: a committed, never acknowledged batch.
TAIL_FINDING = re.compile(r"\d+ entries after the latest checkpoint are not covered by a "
                          r"signature")
#: gRPC codes a call may end with when the gateway dies under it (transport failures).
DEATH_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED,
                         grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNKNOWN,
                         grpc.StatusCode.INTERNAL})


class RigError(AssertionError):
    """Something the crash test requires does not hold; the message says what and where."""


@dataclass(frozen=True)
class Answer:
    """One query that got an OK answer (``cycle`` -1: after the final restart) and its receipt."""

    cycle: int
    request_id: str
    receipt: common_pb2.AuditReceipt

    @property
    def leaf_index(self) -> int:
        return self.receipt.leaf_index


@dataclass
class CycleResult:
    index: int
    early: bool                  # killed during start-up rather than under load
    start_s: float = 0.0         # spawn -> serving (health SERVING)
    kill_after_ms: float = 0.0   # after the first answer (early: after spawn)
    answered: int = 0
    failed: Counter[str] = field(default_factory=Counter)


@dataclass
class FinalReport:
    entries: int
    answered: int
    lost: list[Answer]
    pre_restart_finding: str | None
    verify_rc: int
    verify_output: str
    seconds: float


@contextlib.contextmanager
def pg_schema(base_dsn: str) -> Iterator[str]:
    """A fresh PostgreSQL schema on ``base_dsn``; yields a DSN selecting it, drops it after."""
    import psycopg

    schema = f"pgw_crash_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}".encode())
    try:
        yield f"{base_dsn}{'&' if '?' in base_dsn else '?'}options=" \
              f"{quote(f'-csearch_path={schema}')}"
    finally:
        with psycopg.connect(base_dsn, autocommit=True) as conn:
            conn.execute(b"SET lock_timeout = '20s'")
            conn.execute(f"DROP SCHEMA {schema} CASCADE".encode())


def _read_port(proc: subprocess.Popen[bytes], what: str, timeout: float, log: Path) -> int:
    """Wait for ``listening on port N`` on the child's stdout."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([proc.stdout], [], [], left)
        if not ready:
            break
        line = proc.stdout.readline().decode(errors="replace")
        if not line:
            break
        if m := re.fullmatch(r"listening on port (\d+)\s*", line):
            return int(m.group(1))
    proc.kill()
    proc.wait()
    proc.stdout.close()
    raise RigError(f"{what} did not start within {timeout} s (exit {proc.returncode}); "
                   f"its log {log}:\n{_tail(log)}")


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class CrashRig:
    """A work directory, three running connectors and the kill loop (see the module docstring)."""

    def __init__(self, workdir: Path, *, audit_dsn: str | None = None, seed: int = 1,
                 people: int = 300, concurrency: int = 16, witness_interval_ms: int = 100,
                 kill_window_ms: tuple[int, int] = (50, 400)) -> None:
        self.workdir = workdir
        self.rng = random.Random(seed)
        self.concurrency = concurrency
        self.kill_window_ms = kill_window_ms
        self.answers: list[Answer] = []
        self.cycles: list[CycleResult] = []
        self._connectors: dict[str, subprocess.Popen[bytes]] = {}
        init_workdir(workdir, people=people, seed=seed)
        _lift_rate_limits(workdir / "policies")
        config = workdir / "pgw.toml"
        text = config.read_text()
        text = _set(text, "witness_interval_ms", str(witness_interval_ms))
        if audit_dsn is not None:
            text = _set(text, "dsn", f'"{audit_dsn}"')
        config.write_text(text)
        self.config_path = config
        self.cfg: Config = load_config(config)
        self.issuer = DevIssuer.load(self.cfg.dev_issuer_dir, issuer=self.cfg.issuer,
                                     audience=self.cfg.audience)
        in_all = set(load_person_ids(self.cfg.connector("bank").database, people))
        in_all &= set(load_person_ids(self.cfg.connector("education").database, people))
        self.ids = [i for i in load_person_ids(self.cfg.connector("social-security").database,
                                               people) if i in in_all]
        if len(self.ids) < 5:
            raise RigError(f"only {len(self.ids)} people are in all three databases; want >= 5")
        self.log_key = NoteVerifier(self.cfg.audit_origin, load_public_key(self.cfg.log_public_key))
        self._gateway_runs = 0
        try:
            self._start_connectors()
        except BaseException:
            self.close()
            raise

    def _token(self) -> str:
        """A fresh requester token (a long bench outlives one token's 15 minutes)."""
        return self.issuer.issue(ORG, ["requester"], subject="crash-test-officer")

    # -- processes -----------------------------------------------------------------------------

    def _spawn(self, args: list[str], log_name: str) -> tuple[subprocess.Popen[bytes], Path]:
        log = self.workdir / "logs" / log_name
        log.parent.mkdir(exist_ok=True)
        with log.open("ab") as err:
            proc = subprocess.Popen([sys.executable, "-c", SERVE, *args,
                                     "--config", str(self.config_path)],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err,
                                    env={**os.environ, "PGW_LOG_TRACEBACKS": "1"})
        return proc, log

    def _start_connectors(self) -> None:
        text = self.config_path.read_text()
        for i, partner in enumerate(PARTNERS):
            proc, log = self._spawn(["connector", "serve", partner,
                                     "--listen", "127.0.0.1:0"], f"connector-{partner}.log")
            self._connectors[partner] = proc
            port = _read_port(proc, f"connector {partner}", 60, log)
            old = f'address = "127.0.0.1:{BASE_PORT + i}"'
            if text.count(old) != 1:
                raise RigError(f"pgw.toml: want exactly one {old!r} to point at the connector")
            text = text.replace(old, f'address = "127.0.0.1:{port}"')
        self.config_path.write_text(text)
        self.cfg = load_config(self.config_path)

    def _start_gateway(self) -> tuple[subprocess.Popen[bytes], Path]:
        self._gateway_runs += 1
        return self._spawn(["gateway", "serve", "--listen", "127.0.0.1:0"],
                           f"gateway-{self._gateway_runs:04d}.log")

    async def _serving(self, proc: subprocess.Popen[bytes], log: Path) -> str:
        """Wait until the gateway prints its port and its health service says SERVING."""
        port = await asyncio.to_thread(_read_port, proc, "gateway", 60, log)
        address = f"127.0.0.1:{port}"
        async with grpc.aio.insecure_channel(address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            request = health_pb2.HealthCheckRequest(service="pgw.v1.GatewayService")
            answer = await stub.Check(request, timeout=30, wait_for_ready=True)
        if answer.status != health_pb2.HealthCheckResponse.SERVING:
            raise RigError(f"gateway health: got {answer.status}, want SERVING")
        return address

    @staticmethod
    def _kill(proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        if proc.stdout is not None:
            proc.stdout.close()

    def close(self) -> None:
        """Stop the connectors (SIGTERM, then SIGKILL if they linger)."""
        for proc in self._connectors.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self._connectors.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        self._connectors.clear()

    def connectors_alive(self) -> None:
        dead = [p for p, proc in self._connectors.items() if proc.poll() is not None]
        if dead:
            raise RigError(f"connector(s) died: {', '.join(dead)}")

    # -- one cycle -----------------------------------------------------------------------------

    async def cycle(self, index: int, *, early: bool = False) -> CycleResult:
        """Start a gateway, load it, SIGKILL it; check what it acknowledged (module docstring)."""
        result = CycleResult(index, early)
        spawned = time.monotonic()
        proc, log = self._start_gateway()
        answers: list[Answer] = []
        try:
            if early:
                delay = self.rng.uniform(0.0, 0.6)
                await asyncio.sleep(delay)
                result.kill_after_ms = delay * 1e3
            else:
                address = await self._serving(proc, log)
                result.start_s = time.monotonic() - spawned
                answers = await self._load(index, proc, address, result, log)
        except BaseException:
            self._kill(proc)
            raise
        exited = proc.poll() if early else None  # under load, _load checks before its kill
        self._kill(proc)
        if exited is not None:
            raise RigError(f"cycle {index}: the gateway exited by itself with {exited}; "
                           f"log {log}:\n{_tail(log)}")
        result.answered = len(answers)
        self.answers.extend(answers)
        await asyncio.to_thread(self._check_present, answers, f"cycle {index}")
        self.cycles.append(result)
        return result

    async def _load(self, cycle: int, proc: subprocess.Popen[bytes], address: str,
                    result: CycleResult, log: Path) -> list[Answer]:
        """Queries from ``concurrency`` workers until SIGKILL, 50-400 ms after the first OK."""
        answers: list[Answer] = []
        first = asyncio.Event()
        killed = asyncio.Event()
        problems: list[str] = []

        async def worker(client: GatewayClient, rng: random.Random) -> None:
            while not killed.is_set():
                subjects = rng.sample(self.ids, rng.randint(1, 5))
                try:
                    response = await client.query(PURPOSE, subjects, FIELDS)
                except grpc.aio.AioRpcError as err:
                    result.failed[err.code().name] += 1
                    if not killed.is_set() or _gateway_made(err):
                        problems.append(f"{err.code().name}: {err.details()}")
                        first.set()  # wake the driver: it reports the failure
                    return
                answers.append(self._answer(cycle, response.request_id, response.receipt))
                first.set()

        async with GatewayClient(address, self._token(), timeout_s=20) as client:
            workers = [asyncio.create_task(worker(client, random.Random(self.rng.random())))
                       for _ in range(self.concurrency)]
            try:
                await asyncio.wait_for(first.wait(), 30)
                if problems:
                    raise RigError(f"cycle {cycle}: calls failed before the kill: {problems[:3]}"
                                   f"; gateway log {log}:\n{_tail(log)}")
                delay = self.rng.uniform(*self.kill_window_ms) / 1e3
                await asyncio.sleep(delay)
                result.kill_after_ms = delay * 1e3
                killed.set()
                if proc.poll() is not None:
                    raise RigError(f"cycle {cycle}: the gateway exited by itself with "
                                   f"{proc.returncode} before the kill")
                proc.send_signal(signal.SIGKILL)
                await asyncio.wait_for(asyncio.gather(*workers), 30)
            except TimeoutError:
                raise RigError(f"cycle {cycle}: no answer within 30 s") from None
            finally:
                killed.set()
                for w in workers:
                    w.cancel()
                await asyncio.gather(*workers, return_exceptions=True)
        if problems:
            raise RigError(f"cycle {cycle}: calls failed before the kill: {problems[:3]}; "
                           f"gateway log {log}:\n{_tail(log)}")
        return answers

    @staticmethod
    def _answer(cycle: int, request_id: str, receipt: common_pb2.AuditReceipt) -> Answer:
        if not request_id or not receipt.entry or not receipt.checkpoint:
            raise RigError(f"cycle {cycle}: an OK answer without a request id or receipt")
        return Answer(cycle, request_id, receipt)

    # -- checks --------------------------------------------------------------------------------

    def _check_present(self, answers: list[Answer], where: str) -> None:
        """Each answered entry is stored at its receipt's leaf index and its receipt verifies."""
        if not answers:
            return
        for a in answers:
            try:
                verify_receipt(a.receipt, self.log_key)
            except ReceiptError as exc:
                raise RigError(f"{where}: receipt of {a.request_id}: {exc}") from None
            if AuditEntry.decode(a.receipt.entry).request_id != a.request_id:
                raise RigError(f"{where}: receipt entry of {a.request_id} names another request")
        store = open_store(self.cfg.audit_dsn)
        try:
            size = store.size()
            lost = [a for a in answers if not _stored_at(store, a, size)]
        finally:
            store.close()
        if lost:
            raise RigError(f"{where}: {len(lost)} acknowledged entries lost or moved (log size "
                           f"{size}): " + "; ".join(f"{a.request_id} at {a.leaf_index}"
                                                    for a in lost[:5]))

    def _verify_as_left(self) -> str | None:
        """Offline verification of the log as the last crash left it (no witnesses).

        Returns None or the one allowed finding (an unacknowledged tail); raises otherwise.
        """
        store = open_store(self.cfg.audit_dsn)
        try:
            report = verify_store(store, log_key=self.log_key, origin=self.cfg.audit_origin,
                                  hash_name=self.cfg.audit_hash)
        finally:
            store.close()
        if report.finding is None:
            return None
        latest = max((a.receipt.tree_size for a in self.answers), default=0)
        allowed = (report.finding.index is not None and report.finding.index >= latest
                   and TAIL_FINDING.fullmatch(report.finding.reason))
        if not allowed:
            raise RigError(f"the log as the last crash left it: {report.finding}")
        return str(report.finding)

    def _check_all(self) -> tuple[int, list[Answer]]:
        """Dense, decodable, unique request ids; every answer at its index; receipts are
        prefixes of the final tree. Returns (entries, lost answers)."""
        hasher = get_hasher(self.cfg.audit_hash)
        tree = MerkleTree(hasher)
        where: dict[str, int] = {}
        store = open_store(self.cfg.audit_dsn)
        try:
            for index, data in iter_entries(store):  # raises on a gap
                entry = AuditEntry.decode(data)
                if entry.encode() != data:
                    raise RigError(f"entry {index} is not canonical")
                if entry.request_id in where:
                    raise RigError(f"request {entry.request_id} logged twice: at "
                                   f"{where[entry.request_id]} and {index}")
                where[entry.request_id] = index
                tree.append(hasher.leaf(data))
        finally:
            store.close()
        lost = [a for a in self.answers if where.get(a.request_id) != a.leaf_index
                or tree.leaf_hash(a.leaf_index) != hasher.leaf(a.receipt.entry)]
        roots: dict[int, bytes] = {}
        for a in self.answers:
            roots.setdefault(a.receipt.tree_size, _checkpoint_root(a.receipt.checkpoint,
                                                                   self.log_key))
        for size, root in roots.items():
            if size > tree.size or tree.root(size) != root:
                raise RigError(f"an acknowledged checkpoint of size {size} is not a prefix of "
                               f"the final log of {tree.size} entries; {len(lost)} answered "
                               "requests are not at their receipt's leaf index")
        return tree.size, lost

    async def final_check(self, extra_queries: int = 4) -> FinalReport:
        """Verify as left, restart once, stop gracefully, check everything (module docstring)."""
        started = time.monotonic()
        finding = await asyncio.to_thread(self._verify_as_left)
        proc, log = self._start_gateway()
        try:
            address = await self._serving(proc, log)
            async with GatewayClient(address, self._token(), timeout_s=20) as client:
                for i in range(extra_queries):
                    response = await client.query(PURPOSE, self.ids[i:i + 2], FIELDS)
                    self.answers.append(self._answer(-1, response.request_id, response.receipt))
            proc.terminate()
            code = await asyncio.to_thread(proc.wait, 60)
        finally:
            self._kill(proc)  # reaps it (no-op if SIGTERM already stopped it) and closes stdout
        if code != 0:
            raise RigError(f"the restarted gateway exited with {code} on SIGTERM, want 0; "
                           f"log {log}:\n{_tail(log)}")
        entries, lost = await asyncio.to_thread(self._check_all)
        run = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-c", SERVE, "audit", "verify", "--config",
                             str(self.config_path)],
            capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
        return FinalReport(entries=entries, answered=len(self.answers), lost=lost,
                           pre_restart_finding=finding, verify_rc=run.returncode,
                           verify_output=(run.stdout + run.stderr).strip(),
                           seconds=time.monotonic() - started)


def _set(text: str, key: str, value: str) -> str:
    new, count = re.subn(rf"(?m)^{key} = \S+", f"{key} = {value}", text)
    if count != 1:
        raise RigError(f"pgw.toml: want exactly one '{key} = ...' line, got {count}")
    return new


def _gateway_made(err: grpc.aio.AioRpcError) -> bool:
    """True if the gateway itself answered with this error (it was alive), rather than the
    transport failing under a dying gateway: gateway errors carry google.rpc details or name
    a request id; connection failures carry neither."""
    metadata = err.trailing_metadata() or ()
    return (err.code() not in DEATH_CODES or "request id" in (err.details() or "")
            or any(key == "grpc-status-details-bin" for key, _ in metadata))


def _lift_rate_limits(policies: Path) -> None:
    """Raise every agreement's ``requests_per_minute`` and daily budgets far above the load
    (gateway and connectors read this same copy): a refusal for rate is not what this rig is
    about."""
    for path in sorted(policies.rglob("*.yaml")):
        text = path.read_text()
        path.write_text(re.sub(r"(?m)^(\s*(?:requests_per_minute|subjects_per_day|"
                               r"queries_per_(?:subject|cohort)_per_day):)\s*\d+",
                               r"\1 100000000", text))


def _stored_at(store: AuditStore, answer: Answer, size: int) -> bool:
    if answer.leaf_index >= size:
        return False
    return store.read(answer.leaf_index, answer.leaf_index + 1)[0] == answer.receipt.entry


def _checkpoint_root(note: str, log_key: NoteVerifier) -> bytes:
    return Checkpoint.parse(open_note(note, [log_key]).body).root
