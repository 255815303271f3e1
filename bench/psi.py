"""Private-join benchmark: pgw's ECDH-PSI and keyed-hash joins through the real gRPC path,
against openmined-psi and a bare HMAC-and-set baseline, in the same run.

    python bench/psi.py                       # 2^16 and 2^18 PSI (cardinality) vs openmined-psi
    python bench/psi.py --sizes 16 --keyed 20 # add a keyed-hash run at 2^20 x 2^20
    python bench/psi.py --size 20             # one 2^20 x 2^20 PSI run (target <= 90 s)
    python bench/psi.py --sizes --keyed 22    # keyed-hash 2^22 x 2^22 (target <= 1.5x bare)

Layout, as deployed: the social-security connector and the gateway each run in their own
spawned process (``bench/_servers.py``: real grpc.aio servers on 127.0.0.1:0, signed specs,
audit before release, each with its own 2-worker pool where it needs one); this process is the
requester (pgw's ``JoinClient`` with a 2-worker spawned ``PsiPool``). All share this machine's
cores, and the baselines run in this process, one thread, in the same run on the same sets:
n requester ids and n partner ids, half shared. The connector's join set is a synthetic set
injected in place of its SQLite set, so sizes are not bounded by the demo database. The bench
writes its own copy of the agreements with hpf-fraud-ss's limits.max_subjects_per_request
raised to 2^22 (joins are bounded by it; the shipped value is 2^20).

Each line ends with the CPU seconds each process (with its workers) spent in the timed call
and the load average, since the cores are shared with whatever else runs on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import load_average, machine_description, make_ids, widen_limits
from _servers import ServerProcess, describe, tree_usage

from gateway.privacy import hmac_packed


def prepare(workdir: Path) -> tuple[Path, str]:
    """The bench's workdir (agreements widened to 2^22) and a requester token for HPF."""
    from gateway.auth import DevIssuer
    from gateway.config import load_config
    from gateway.workdir import init_workdir

    if not (workdir / "pgw.toml").exists():
        init_workdir(workdir, people=500, seed=7)
    widen_limits(workdir / "policies" / "agreements" / "hpf-fraud-ss.yaml", 1 << 22)
    cfg = load_config(workdir / "pgw.toml")
    issuer = DevIssuer.load(cfg.dev_issuer_dir, issuer=cfg.issuer, audience=cfg.audience)
    return workdir / "pgw.toml", issuer.issue("hpf-changzhou", ["requester"], subject="bench",
                                              ttl_s=6 * 3600)


def openmined(client_ids: list[str], server_ids: list[str]) -> tuple[float, int]:
    import private_set_intersection.python as psi

    t = time.perf_counter()
    client = psi.client.CreateWithNewKey(False)
    server = psi.server.CreateWithNewKey(False)
    setup = server.CreateSetupMessage(1e-9, len(client_ids), server_ids, psi.DataStructure.RAW)
    response = server.ProcessRequest(client.CreateRequest(client_ids))
    count = client.GetIntersectionSize(setup, response)
    return time.perf_counter() - t, count


def bare_keyed(client_ids: list[str], server_ids: list[str]) -> tuple[float, int]:
    """HMAC-SHA256 both sets with pgw's own tag function, one process; a set; membership."""
    t = time.perf_counter()
    key = b"k" * 32

    def macs(ids: list[str]) -> list[bytes]:
        packed = hmac_packed(key, [i.encode() for i in ids])
        return [packed[i:i + 32] for i in range(0, len(packed), 32)]

    theirs = set(macs(server_ids))
    flags = [m in theirs for m in macs(client_ids)]
    return time.perf_counter() - t, sum(flags)


def spent(before: dict[str, float], after: dict[str, float], key: str) -> float:
    return after[key] - before[key]


async def timed_join(client: Any, mode: str, output: str, ids: list[str],
                     servers: list[tuple[str, ServerProcess]]) -> tuple[float, int, str]:
    """One join through pgw: seconds, matches, and the CPU each process spent in it."""
    before = [(name, s.usage()) for name, s in servers] + [("requester", tree_usage())]
    t = time.perf_counter()
    result = await client.join("social-security", "fraud-detection", mode, output, ids)
    elapsed = time.perf_counter() - t
    after = [s.usage() for _, s in servers] + [tree_usage()]
    cpu = ", ".join(f"{name} {spent(b, a, 'cpu_s'):.1f} (main {spent(b, a, 'main_cpu_s'):.1f})"
                    for (name, b), a in zip(before, after, strict=True))
    count = result.match_count if result.match_count is not None else sum(result.membership)
    return elapsed, count, f"CPU s: {cpu}"


async def run(kind: str, exp: int, args: argparse.Namespace, config: Path, token: str) -> None:
    from gateway.client import JoinClient
    from gateway.privacy import PsiPool

    n = 1 << exp
    client_ids = make_ids(n)
    with ServerProcess.partner(config, "social-security", synthetic=(n, n // 2)) as partner, \
            ServerProcess.gateway(config, {"social-security": partner.port}) as gateway:
        servers = [("gateway", gateway), ("connector", partner)]
        with PsiPool() as pool:
            await asyncio.to_thread(pool.warm_up)
            async with JoinClient(f"127.0.0.1:{gateway.port}", token, pool=pool) as client:
                mode, output = ("ecdh-psi", args.output) if kind == "psi" else (
                    "keyed-hash", "membership")
                warm = make_ids(1 << 13, start=1 << 30)  # start the connector's pool
                await client.join("social-security", "fraud-detection", mode, output, warm)
                load = load_average()
                ours, count, cpu = await timed_join(client, mode, output, client_ids, servers)
        peaks = describe([(name, s.stop()) for name, s in servers] + [("requester", tree_usage())])
    if kind == "psi":
        line = (f"ecdh-psi {args.output} 2^{exp} x 2^{exp}: pgw {ours:7.1f} s "
                f"({2 * n / ours:,.0f} items/s), matches {count}")
        if not args.skip_openmined:
            server_ids = make_ids(n, start=n // 2)
            theirs, their_count = await asyncio.to_thread(openmined, client_ids, server_ids)
            line += (f" | openmined-psi {theirs:7.1f} s, matches {their_count} "
                     f"| throughput ratio {theirs / ours:4.2f}x")
    else:
        bare, bare_count = bare_keyed(client_ids, make_ids(n, start=n // 2))
        line = (f"keyed-hash membership 2^{exp} x 2^{exp}: pgw {ours:6.1f} s, matches {count} "
                f"| bare HMAC-and-set {bare:6.1f} s, matches {bare_count} "
                f"| pgw/bare {ours / bare:4.2f}x")
    print(line, flush=True)
    print(f"    {cpu}; {load} before, {load_average()} after", flush=True)
    print(f"    {peaks}", flush=True)


async def main_async(args: argparse.Namespace, workdir: Path) -> None:
    from gateway.logs import configure_logging

    configure_logging("warning")
    print(machine_description(), flush=True)
    config, token = prepare(workdir)
    for kind, exp in [("psi", e) for e in args.sizes] + [("keyed", e) for e in args.keyed]:
        await run(kind, exp, args, config, token)


def main() -> int:
    import faulthandler
    import signal

    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 PID` dumps every thread's stack
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[16, 18],
                        help="log2 set sizes for PSI vs openmined-psi (default 16 18)")
    parser.add_argument("--size", type=int, help="one PSI size only (e.g. 20), no openmined")
    parser.add_argument("--keyed", type=int, nargs="*", default=[],
                        help="log2 sizes for keyed-hash vs bare HMAC-and-set (e.g. 22)")
    parser.add_argument("--output", default="cardinality",
                        choices=["cardinality", "membership"])
    parser.add_argument("--skip-openmined", action="store_true")
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    if args.size:
        args.sizes, args.skip_openmined = [args.size], True
    if args.workdir:
        asyncio.run(main_async(args, args.workdir))
    else:
        with tempfile.TemporaryDirectory(prefix="pgw-bench-psi-") as tmp:
            asyncio.run(main_async(args, Path(tmp)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
