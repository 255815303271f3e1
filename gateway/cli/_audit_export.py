"""``pgw audit export``: entries with inclusion proofs as JSON lines, subject sets included.

Entries and proofs come from the gateway's Export RPC, and a bulk entry's subject set from its
GetSubjectSet RPC (both auditor role; the officer needs no access to the audit database). The
command checks each set against its entry's digest again and writes it into the entry's line
(format: :mod:`gateway.audit._archive`). An archive without the sets could not answer "who
accessed this person?" offline for a bulk compute, so a set that cannot be had stops the
export; ``--digests-only`` is the explicit way to write an archive that holds only the digests.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import grpc

from gateway.audit import SubjectSet
from gateway.audit._archive import export_line
from gateway.cli._common import CliError
from gateway.pb.pgw.v1 import audit_pb2

__all__ = ["add_arguments", "read_set", "run_export"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--digests-only", action="store_true",
                        help="leave bulk subject sets out (the archive then holds their digests "
                        "only, and cannot say offline who was in a bulk compute)")


async def read_set(stub: Any, md: Any, index: int, entry: bytes) -> bytes | None:
    """The subject set of entry ``index`` from the gateway if it has one, checked here too."""
    doc = json.loads(entry)
    if "subject_set" not in doc:
        return None
    described = SubjectSet.of_entry(doc)
    parts = []
    try:
        async for part in stub.GetSubjectSet(audit_pb2.GetSubjectSetRequest(index=index),
                                             metadata=md):
            parts.append(part.pseudonyms)
    except grpc.aio.AioRpcError as err:
        raise CliError(f"entry {index} keeps its {described.count} subjects in a subject set, "
                       f"which the gateway did not hand over: {err.code().name}: "
                       f"{err.details()}",
                       hint="run `pgw audit verify` at the gateway, or pass --digests-only"
                       ) from None
    blob = b"".join(parts)
    problem = described.problem(blob)
    if problem is not None:
        raise CliError(f"entry {index}: {problem}", hint="run `pgw audit verify`")
    return blob


def run_export(args: argparse.Namespace, call: Any) -> int:
    """``call(args, fn)`` runs ``fn(stub, metadata)`` against the gateway (see ``_audit``)."""
    async def export(stub: Any, md: Any) -> int:
        out = args.out.open("w") if args.out else sys.stdout
        count = 0
        try:
            async for item in stub.Export(audit_pb2.ExportRequest(start=args.start, end=args.end),
                                          metadata=md):
                index, entry = item.entry.index, item.entry.entry
                blob = None if args.digests_only else await read_set(stub, md, index, entry)
                out.write(export_line(index, item.tree_size, entry, item.inclusion_proof, blob)
                          + "\n")
                count += 1
                if count % 10_000 == 0:
                    print(f"  exported {count} entries", file=sys.stderr)
        finally:
            if args.out:
                out.close()
        return count
    count = call(args, export)
    print(f"exported {count} entries", file=sys.stderr)
    return 0
