"""pgw's servers in their own processes for the benches, as they are deployed.

Each partner's connector runs in its own network and the gateway (hub) on its own host, so a
bench that hosts them in its own process makes them share one interpreter and one GIL with the
requester. Here each server is a spawned process with its own event loop (and its own worker
pools); the bench process is the requester. All of them share this machine's cores, as the
baselines of the same run do.

    with ServerProcess.partner(config, "social-security", synthetic=(n, n // 2)) as partner:
        with ServerProcess.gateway(config, {"social-security": partner.port}) as gateway:
            ... JoinClient(f"127.0.0.1:{gateway.port}", token) ...

``usage()`` answers the CPU seconds and peak RSS of a server and its worker processes, read
from ``/proc`` (Linux), so a bench can say where the CPU time went. With the environment
variable ``PGW_BENCH_PROFILE=DIR`` each server's main thread is profiled (cProfile) into DIR.
"""

from __future__ import annotations

import asyncio
import dataclasses
import multiprocessing
import os
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from _common import make_ids

from connectors.sdk._compute import close_shared_pool
from connectors.sdk._join import JoinSet

_TICK = os.sysconf("SC_CLK_TCK")


class SyntheticSet(JoinSet):
    """The partner's people for the PSI bench: fixed ids, nothing read from a database."""

    def __init__(self, ids: list[str]) -> None:
        self.ids = ids

    async def members(self, where: Any, value_field: str | None) -> list[tuple[str, float]]:
        return [(i, 1.0) for i in self.ids]


def _proc_usage(pid: int) -> tuple[float, float]:
    """(CPU seconds, peak RSS MiB) of one live process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / _TICK
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0, 0.0
    peak = next((int(line.split()[1]) / 1024 for line in status.splitlines()
                 if line.startswith("VmHWM:")), 0.0)
    return cpu, peak


def tree_usage() -> dict[str, float]:
    """CPU seconds of this process plus its live worker processes (not the servers started
    here), and the largest peak RSS of any."""
    own_cpu, own_peak = _proc_usage(os.getpid())
    kids = [_proc_usage(p.pid) for p in multiprocessing.active_children()
            if p.pid and not p.name.startswith("pgw-")]
    return {"cpu_s": own_cpu + sum(c for c, _ in kids), "main_cpu_s": own_cpu,
            "peak_mib": own_peak, "worker_peak_mib": max((m for _, m in kids), default=0.0)}


async def _serve(kind: str, config: str, arg: Any, conn: Connection) -> None:
    import gateway.server
    from gateway.config import load_config
    from gateway.logs import configure_logging

    configure_logging("error")
    cfg = load_config(Path(config))
    if kind == "partner":
        partner, synthetic = arg
        if synthetic is not None:
            ids = make_ids(*synthetic)
            gateway.server.open_join_set = lambda *a, **k: SyntheticSet(ids)  # type: ignore
        running = await gateway.server.start_partner(cfg, partner, listen="127.0.0.1:0")
    else:
        ports, max_message = arg
        if max_message:
            gateway.server.MAX_MESSAGE = max_message  # type: ignore[misc]
        live = dataclasses.replace(cfg, connectors={
            p: dataclasses.replace(c, address=f"127.0.0.1:{ports[p]}")
            for p, c in cfg.connectors.items() if p in ports})
        running = await gateway.server.start_gateway(live, listen="127.0.0.1:0")
    conn.send(running.port)
    loop = asyncio.get_running_loop()
    while (request := await loop.run_in_executor(None, conn.recv)) != "stop":
        conn.send(tree_usage() if request == "usage" else None)
    final = tree_usage()
    await running.stop(1)
    # the HE pool is process-wide (not a closer of the server); a spawned child ends with
    # os._exit, which runs no atexit hook, so stop its workers here or they outlive it
    await asyncio.to_thread(close_shared_pool)
    conn.send(final)


def _main(kind: str, config: str, arg: Any, conn: Connection) -> None:
    profile = os.environ.get("PGW_BENCH_PROFILE")  # a directory: cProfile each server there
    if not profile:
        asyncio.run(_serve(kind, config, arg, conn))
        return
    import cProfile

    with cProfile.Profile() as prof:
        asyncio.run(_serve(kind, config, arg, conn))
    prof.dump_stats(Path(profile) / f"{kind}-{os.getpid()}.prof")


class ServerProcess:
    """A gateway or a connector in a spawned process; a context manager that stops it."""

    def __init__(self, kind: str, config: Path, arg: Any) -> None:
        self.kind = kind
        self._conn, child = multiprocessing.get_context("spawn").Pipe()
        self._process = multiprocessing.get_context("spawn").Process(
            target=_main, args=(kind, str(config), arg, child), name=f"pgw-{kind}")
        self._process.start()
        child.close()
        if not self._conn.poll(120):
            self._process.kill()
            raise RuntimeError(f"the {kind} process did not start")
        self.port: int = self._conn.recv()
        self.final: dict[str, float] | None = None

    @classmethod
    def partner(cls, config: Path, partner: str,
                synthetic: tuple[int, int] | None = None) -> ServerProcess:
        """The partner's connector; ``synthetic=(n, start)`` replaces its join set."""
        return cls("partner", config, (partner, synthetic))

    @classmethod
    def gateway(cls, config: Path, partner_ports: dict[str, int],
                max_message: int | None = None) -> ServerProcess:
        """The gateway, dialling the given partners on 127.0.0.1 (the others are dropped);
        ``max_message`` replaces its public port's gRPC message ceiling (16 MiB)."""
        return cls("gateway", config, (partner_ports, max_message))

    def usage(self) -> dict[str, float]:
        """CPU seconds so far (with its workers) and peak RSS."""
        self._conn.send("usage")
        return self._conn.recv()  # type: ignore[no-any-return]

    def stop(self) -> dict[str, float]:
        if self.final is None:
            self._conn.send("stop")
            self.final = self._conn.recv() if self._conn.poll(60) else {}
            self._process.join(30)
            if self._process.is_alive():
                self._process.kill()
        return self.final

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def describe(usages: Sequence[tuple[str, dict[str, float]]]) -> str:
    """``name 12.3 s CPU (peak 210 MiB, workers 180 MiB); ...`` for a bench's output."""
    return "; ".join(f"{name} {u.get('cpu_s', 0):.1f} s CPU (peak {u.get('peak_mib', 0):.0f} "
                     f"MiB, workers {u.get('worker_peak_mib', 0):.0f} MiB)" for name, u in usages)
