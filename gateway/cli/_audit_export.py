"""``pgw audit export``: entries with inclusion proofs as JSON lines, subject sets included.

Entries and proofs come from the gateway's Export RPC (auditor role). A bulk entry's subject
set does not travel in that RPC (``ExportResponse`` has no field for it yet, and a 2^20-subject
set is 32 MiB, over the message ceiling), so the command reads each set from the audit store
named by ``[audit] dsn``, the same direct access ``pgw audit verify`` uses, checks it against
the entry's digest, and writes it into the entry's line (format: :mod:`gateway.audit._archive`).
An archive without the sets could not answer "who accessed this person?" offline for a bulk
compute, so a set that cannot be read stops the export; ``--digests-only`` is the explicit way
to write an archive that holds only the digests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from gateway.audit import SubjectSet
from gateway.audit._archive import export_line
from gateway.audit._store import AuditStore
from gateway.cli._common import CliError, config_of
from gateway.config import Config
from gateway.errors import GatewayError
from gateway.pb.pgw.v1 import audit_pb2

__all__ = ["SetReader", "add_arguments", "run_export"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--digests-only", action="store_true",
                        help="leave bulk subject sets out (the archive then holds their digests "
                        "only, and cannot say offline who was in a bulk compute)")


class SetReader:
    """Reads subject sets from the audit store, opened on the first entry that has one."""

    def __init__(self, cfg: Config) -> None:
        self._cfg = cfg
        self._store: AuditStore | None = None

    def read(self, index: int, entry: bytes) -> bytes | None:
        """The set of entry ``index`` if it has one, checked against its digest."""
        doc = json.loads(entry)
        if "subject_set" not in doc:
            return None
        described = SubjectSet.from_json(doc["subject_set"])
        try:
            if self._store is None:
                from gateway.audit._store import open_store

                self._store = open_store(self._cfg.audit_dsn)
            blob = self._store.read_subject_set(index)
        except GatewayError as err:
            raise CliError(f"entry {index} keeps its {described.count} subjects in a subject "
                           f"set, which is read from the audit store: {err.message}",
                           hint="run where [audit] dsn is reachable, or pass --digests-only"
                           ) from None
        problem = described.problem(blob)
        if problem is not None:
            raise CliError(f"entry {index}: {problem}", hint="run `pgw audit verify`")
        return blob

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def run_export(args: argparse.Namespace, call: Any) -> int:
    """``call(args, fn)`` runs ``fn(stub, metadata)`` against the gateway (see ``_audit``)."""
    sets = None if args.digests_only else SetReader(config_of(args))

    async def export(stub: Any, md: Any) -> int:
        out = args.out.open("w") if args.out else sys.stdout
        count = 0
        try:
            async for item in stub.Export(audit_pb2.ExportRequest(start=args.start, end=args.end),
                                          metadata=md):
                index, entry = item.entry.index, item.entry.entry
                blob = None if sets is None else await asyncio.to_thread(sets.read, index, entry)
                out.write(export_line(index, item.tree_size, entry, item.inclusion_proof, blob)
                          + "\n")
                count += 1
                if count % 10_000 == 0:
                    print(f"  exported {count} entries", file=sys.stderr)
        finally:
            if args.out:
                out.close()
        return count
    try:
        count = call(args, export)
    finally:
        if sets is not None:
            sets.close()
    print(f"exported {count} entries", file=sys.stderr)
    return 0
