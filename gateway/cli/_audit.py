"""Officer commands: ``audit verify``, ``verify-receipt``, ``checkpoint``, ``search``,
``export`` and ``tail``."""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import time
from pathlib import Path
from typing import Any

import grpc

from gateway.cli import _audit_export
from gateway.cli._common import (
    CliError,
    add_config,
    add_credentials,
    config_of,
    requester_ca,
    rpc_failure,
    table,
    token_for,
)
from gateway.client._channel import open_channel
from gateway.config import Config
from gateway.pb.pgw.v1 import audit_pb2, audit_pb2_grpc


def register(sub: Any) -> None:
    audit = sub.add_parser("audit", help="security officers: verify, search, export the log")
    actions = audit.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    v = actions.add_parser("verify", help="recompute the log from storage and check it",
                           description="Recompute the Merkle tree from the audit store, check "
                           "every stored checkpoint's signature and root, the latest one's witness "
                           "cosignatures, and with --since that the log still extends a checkpoint "
                           "you saved. Exit 0 only if all hold; otherwise name the first bad "
                           "index.")
    add_config(v)
    v.add_argument("--since", type=Path, metavar="FILE",
                   help="an earlier checkpoint saved with `pgw audit checkpoint --save` (checks "
                   "the log still extends it), or an archive from `pgw audit export` (also "
                   "names the exact first entry rewritten or lost)")
    v.set_defaults(run=run_verify)
    r = actions.add_parser("verify-receipt", help="verify a query's audit receipt offline",
                           description="Check a receipt saved by `pgw query --receipt FILE`: the "
                           "checkpoint's signature by the log key and the inclusion proof.")
    add_config(r)
    r.add_argument("file", type=Path, metavar="FILE")
    r.set_defaults(run=run_verify_receipt)
    c = actions.add_parser("checkpoint", help="show (and save) the latest cosigned checkpoint")
    _remote(c)
    c.add_argument("--save", type=Path, metavar="FILE", help="write the note to FILE")
    c.set_defaults(run=run_checkpoint)
    s = actions.add_parser("search", help="find entries (by org, purpose, partner, person...)",
                           description="Search the log. --subject takes a person's id; the "
                           "server turns it into the keyed pseudonym entries carry. With "
                           "--archive, search an export archive here instead, offline: a "
                           "--subject search then needs the audit pseudonym key (read from "
                           "[audit] pseudonym_key of --config).")
    _remote(s)
    s.add_argument("--archive", type=Path, metavar="FILE",
                   help="an archive written by `pgw audit export`: search it, not the gateway")
    for name in ("org", "purpose", "partner"):
        s.add_argument(f"--{name}" if name != "org" else "--requester-org")
    s.add_argument("--decision", choices=["allow", "deny", "error"])
    s.add_argument("--from", dest="time_from", metavar="RFC3339")
    s.add_argument("--to", dest="time_to", metavar="RFC3339")
    s.add_argument("--subject", metavar="ID", help="a person's GB 11643 id")
    s.add_argument("--limit", type=int, default=100)
    s.set_defaults(run=run_search)
    e = actions.add_parser("export", help="export entries with inclusion proofs as JSON lines",
                           description="Write entries with inclusion proofs as JSON lines. A bulk "
                           "entry's subject set is read from the audit store ([audit] dsn) and "
                           "written into its line, so the archive can answer who was accessed.")
    _remote(e)
    e.add_argument("--start", type=int, default=0)
    e.add_argument("--end", type=int, default=0, help="exclusive; 0 for the latest checkpoint")
    e.add_argument("--out", type=Path, help="file (default: standard output)")
    _audit_export.add_arguments(e)
    e.set_defaults(run=run_export)
    t = actions.add_parser("tail", help="show the newest entries (--follow to keep watching)")
    _remote(t)
    t.add_argument("-n", type=int, default=10, help="how many (default 10)")
    t.add_argument("--follow", action="store_true")
    t.set_defaults(run=run_tail)


def _remote(p: argparse.ArgumentParser) -> None:
    add_config(p)
    add_credentials(p)
    p.add_argument("--gateway", metavar="HOST:PORT", help="default: [gateway] listen")


def log_verifiers(cfg: Config) -> tuple[Any, list[Any]]:
    from gateway.audit import SIG_TYPE_COSIGNATURE_V1, NoteVerifier
    from gateway.keys import load_public_key

    log_key = NoteVerifier(cfg.audit_origin, load_public_key(cfg.log_public_key))
    witnesses = [NoteVerifier(cfg.witness_name(p), load_public_key(c.witness_public_key),
                              SIG_TYPE_COSIGNATURE_V1) for p, c in cfg.connectors.items()]
    return log_key, witnesses


def verify_and_report(cfg: Config, since: Path | None = None) -> bool:
    from gateway.audit._offline import verify_store
    from gateway.audit._store import open_store

    log_key, witnesses = log_verifiers(cfg)
    store = open_store(cfg.audit_dsn)
    try:
        started = time.perf_counter()
        report = verify_store(store, log_key=log_key, origin=cfg.audit_origin,
                              hash_name=cfg.audit_hash, witnesses=witnesses,
                              quorum=cfg.witness_quorum,
                              since=since.read_text() if since else None)
    finally:
        store.close()
    took = time.perf_counter() - started
    if report.ok:
        sets = (f", {report.subject_sets} subject sets match their digests"
                if report.subject_sets else "")
        print(f"OK: {report.size} entries recomputed ({cfg.audit_hash}), {report.checkpoints} "
              f"signed checkpoints match{sets}; latest cosigned by {len(report.cosigned_by)} of "
              f"{len(witnesses)} witnesses ({', '.join(report.cosigned_by) or 'none'}; "
              f"{cfg.witness_quorum} required){'; extends --since' if since else ''} "
              f"[{took:.2f} s]")
        return True
    print(f"FAILED at {report.finding}", file=sys.stderr)
    return False


def run_verify(args: argparse.Namespace) -> int:
    return 0 if verify_and_report(config_of(args), args.since) else 1


def run_verify_receipt(args: argparse.Namespace) -> int:
    from gateway.receipts import ReceiptError, load_receipt, verify_receipt

    log_key, _ = log_verifiers(config_of(args))
    try:
        receipt = load_receipt(args.file)
        checkpoint = verify_receipt(receipt, log_key)
    except ReceiptError as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    entry = json.loads(receipt.entry)
    print(f"OK: entry {receipt.leaf_index} ({entry['decision']} {entry['kind']} by "
          f"{entry['requester_org']} for {entry['purpose']}) is in the log of size "
          f"{checkpoint.size} signed by {log_key.name}")
    return 0


def _call(args: argparse.Namespace, fn: Any) -> Any:
    cfg = config_of(args)
    token = token_for(cfg, args)
    metadata = (("authorization", f"Bearer {token}"),)

    async def go() -> Any:
        async with open_channel(args.gateway or cfg.listen, ca=requester_ca(cfg)) as channel:
            return await fn(audit_pb2_grpc.AuditServiceStub(channel), metadata)
    try:
        return asyncio.run(go())
    except grpc.RpcError as err:
        raise rpc_failure(err) from None


def run_checkpoint(args: argparse.Namespace) -> int:
    answer = _call(args, lambda stub, md: stub.GetCheckpoint(
        audit_pb2.GetCheckpointRequest(), metadata=md, timeout=10))
    print(answer.checkpoint, end="")
    if args.save:
        args.save.write_text(answer.checkpoint)
        print(f"saved to {args.save}", file=sys.stderr)
    return 0


def _rows(entries: Any) -> list[list[Any]]:
    rows = []
    for e in entries:
        d = json.loads(e.entry)
        fields = ",".join(f"{p}.{f}:{t}" for p, f, t in d["released"]) or "-"
        rows.append([e.index, d["time"][:19], d["kind"], d["decision"], d["requester_org"],
                     d["role"], d["purpose"], d["subject_count"], fields])
    return rows


HEADERS = ["index", "time", "kind", "decision", "org", "role", "purpose", "subjects", "released"]


def run_search(args: argparse.Namespace) -> int:
    if args.archive is not None:
        return _search_archive(args)
    request = audit_pb2.SearchRequest(**_criteria(args), limit=args.limit)
    answer = _call(args, lambda stub, md: stub.Search(request, metadata=md, timeout=60))
    print(table(HEADERS, _rows(answer.entries)))
    print(f"{len(answer.entries)} entries", file=sys.stderr)
    return 0


def _criteria(args: argparse.Namespace) -> dict[str, str]:
    """The search criteria given on the command line ("" for those left out)."""
    names = ("requester_org", "purpose", "partner", "decision", "time_from", "time_to",
             "subject")
    return {name: getattr(args, name) or "" for name in names}


def _search_archive(args: argparse.Namespace) -> int:
    from gateway.audit_search import person_forms, search_archive, search_criteria
    from gateway.errors import GatewayError
    from gateway.keys import load_secret

    def forms(subject: str) -> dict[str, Any]:
        return person_forms(load_secret(config_of(args).audit_pseudonym_key), subject)

    try:
        text = args.archive.read_text(encoding="utf-8")
        criteria = search_criteria(forms, **_criteria(args))
        found = list(itertools.islice(search_archive(text, criteria), args.limit))
    except OSError as exc:
        raise CliError(f"cannot read the archive {args.archive}: {exc.strerror}") from None
    except GatewayError as err:
        raise CliError(err.outward_message()) from None
    except ValueError as exc:
        raise CliError(f"{args.archive}: {exc}") from None
    print(table(HEADERS, _rows(found)))
    print(f"{len(found)} entries (from {args.archive}, offline)", file=sys.stderr)
    return 0


def run_export(args: argparse.Namespace) -> int:
    return _audit_export.run_export(args, _call)


def run_tail(args: argparse.Namespace) -> int:
    async def tail(stub: Any, md: Any) -> None:
        start = None
        while True:
            cp = await stub.GetCheckpoint(audit_pb2.GetCheckpointRequest(), metadata=md,
                                          timeout=10)
            size = cp.size
            begin = max(0, size - args.n) if start is None else start
            if size > begin:
                got = await stub.GetEntries(audit_pb2.GetEntriesRequest(start=begin, end=size),
                                            metadata=md, timeout=10)
                print(table(HEADERS, _rows(got.entries)), flush=True)
            start = size
            if not args.follow:
                return
            await asyncio.sleep(1.0)
    try:
        _call(args, tail)
    except CliError:
        raise
    return 0
