"""Private-join benchmark: pgw's ECDH-PSI and keyed-hash joins through the real gRPC path,
against openmined-psi and a bare HMAC-and-set baseline, in the same run.

    python bench/psi.py                       # 2^16 and 2^18 PSI (cardinality) vs openmined-psi
    python bench/psi.py --sizes 16 --keyed 20 # add a keyed-hash run at 2^20 x 2^20
    python bench/psi.py --size 20             # one 2^20 x 2^20 PSI run (target <= 90 s)
    python bench/psi.py --sizes --keyed 22    # keyed-hash 2^22 x 2^22 (target <= 1.5x bare)

The gateway and the social-security connector run in this process on 127.0.0.1:0 (real
grpc.aio servers, signed specs, audit); the requester is pgw's JoinClient. The connector's
join set is a synthetic set of n ids (half shared with the requester's n ids) injected in place
of its SQLite set, so sizes are not bounded by the demo database. The bench writes its own copy
of the agreements into its workdir with hpf-fraud-ss's limits.max_subjects_per_request raised
to 2^22 (joins are bounded by it; the shipped value is 2^20).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import hashlib
import hmac
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import machine_description

from connectors.sdk._join import JoinSet
from gateway.validate import person_id_check_char


class SyntheticSet(JoinSet):
    """The partner's people for the bench: fixed ids, nothing read from a database."""

    def __init__(self, ids: list[str]) -> None:
        self.ids = ids

    async def members(self, where: Any, value_field: str | None) -> list[tuple[str, float]]:
        return [(i, 1.0) for i in self.ids]


def make_ids(n: int, start: int = 0) -> list[str]:
    out = []
    for k in range(start, start + n):
        day, seq = divmod(k, 1000)
        year, rest = divmod(day, 336)
        month, dom = divmod(rest, 28)
        first = f"3204{k % 97:02d}{1940 + year % 80}{month + 1:02d}{dom + 1:02d}{seq:03d}"
        out.append(first + person_id_check_char(first))
    return out


async def start(workdir: Path, partner_ids: list[str]) -> tuple[Any, Any, str, str]:
    import gateway.server
    from gateway.auth import DevIssuer
    from gateway.config import load_config
    from gateway.server import start_gateway, start_partner
    from gateway.workdir import init_workdir

    if not (workdir / "pgw.toml").exists():
        init_workdir(workdir, people=500, seed=7)
    path = workdir / "policies" / "agreements" / "hpf-fraud-ss.yaml"
    path.write_text(re.sub(r"max_subjects_per_request: \d+",
                           f"max_subjects_per_request: {1 << 22}", path.read_text()))
    cfg = load_config(workdir / "pgw.toml")
    real = gateway.server.open_join_set
    gateway.server.open_join_set = lambda *a, **k: SyntheticSet(partner_ids)  # type: ignore
    try:
        partner = await start_partner(cfg, "social-security", listen="127.0.0.1:0")
    finally:
        gateway.server.open_join_set = real  # type: ignore[assignment]
    live = dataclasses.replace(cfg, connectors={
        p: dataclasses.replace(c, address=f"127.0.0.1:{partner.port}")
        for p, c in cfg.connectors.items() if p == "social-security"})
    gw = await start_gateway(live, listen="127.0.0.1:0")
    issuer = DevIssuer.load(cfg.dev_issuer_dir, issuer=cfg.issuer, audience=cfg.audience)
    return gw, partner, f"127.0.0.1:{gw.port}", issuer.issue("hpf-changzhou", ["requester"],
                                                              subject="bench")


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
    t = time.perf_counter()
    key = b"k" * 32
    base = hmac.new(key, digestmod=hashlib.sha256)

    def macs(ids: list[str]) -> list[bytes]:
        out = []
        for i in ids:
            m = base.copy()
            m.update(i.encode())
            out.append(m.digest())
        return out

    theirs = set(macs(server_ids))
    flags = [m in theirs for m in macs(client_ids)]
    return time.perf_counter() - t, sum(flags)


async def pgw(address: str, token: str, mode: str, output: str, ids: list[str],
              client: Any) -> tuple[float, int]:
    t = time.perf_counter()
    result = await client.join("social-security", "fraud-detection", mode, output, ids)
    count = result.match_count if result.match_count is not None else sum(result.membership)
    return time.perf_counter() - t, count


async def main_async(args: argparse.Namespace, workdir: Path) -> None:
    from gateway.client import JoinClient
    from gateway.logs import configure_logging
    from gateway.privacy import PsiPool

    configure_logging("warning")
    print(machine_description(), flush=True)
    runs = [("psi", e) for e in args.sizes] + [("keyed", e) for e in args.keyed]
    for kind, exp in runs:
        n = 1 << exp
        client_ids = make_ids(n)
        server_ids = make_ids(n, start=n // 2)
        gw, partner, address, token = await start(workdir, server_ids)
        pool = PsiPool()
        await asyncio.to_thread(pool.warm_up)
        try:
            async with JoinClient(address, token, pool=pool) as client:
                if kind == "psi":
                    ours, count = await pgw(address, token, "ecdh-psi", args.output,
                                            client_ids, client)
                    line = (f"ecdh-psi {args.output} 2^{exp} x 2^{exp}: pgw {ours:7.1f} s "
                            f"({2 * n / ours:,.0f} items/s), matches {count}")
                    if not args.skip_openmined:
                        theirs, their_count = await asyncio.to_thread(openmined, client_ids,
                                                                      server_ids)
                        line += (f" | openmined-psi {theirs:7.1f} s, matches {their_count} "
                                 f"| throughput ratio {theirs / ours:4.2f}x")
                else:
                    ours, count = await pgw(address, token, "keyed-hash", "membership",
                                            client_ids, client)
                    bare, bare_count = await asyncio.to_thread(bare_keyed, client_ids,
                                                               server_ids)
                    line = (f"keyed-hash membership 2^{exp} x 2^{exp}: pgw {ours:6.1f} s, "
                            f"matches {count} | bare HMAC-and-set {bare:6.1f} s, matches "
                            f"{bare_count} | pgw/bare {ours / bare:4.2f}x")
                print(line, flush=True)
        finally:
            await asyncio.to_thread(pool.close)
            await gw.stop(0.5)
            await partner.stop(0.5)


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
