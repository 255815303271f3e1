"""Helper for the kill -9 test: append synthetic entries under concurrent load, forever.

    python _crash_writer.py DSN HASH WRITERS SEED

Opens an :class:`AuditLog` on DSN and runs WRITERS tasks that append entries in a loop.
After each ``append`` returns (the entry is durable and covered by a stored checkpoint) the
index is written to stdout as one line with a single ``write`` system call, so the parent,
which SIGKILLs this process at a random moment, knows exactly what was acknowledged.

Entries are real :class:`AuditEntry` encodings of synthetic decisions: subjects appear only as
keyed pseudonyms of synthetic labels, never as ids.
"""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.audit._entry import AgreementRef, AuditEntry, format_time, subject_pseudonym
from gateway.audit._log import AuditLog
from gateway.audit._note import NoteSigner

ORIGIN = "pgw.test/crash"
PSEUDONYM_KEY = bytes(range(32))
SIGNER_SEED = bytes(range(1, 33))
_EPOCH = datetime(2025, 1, 1, tzinfo=UTC)


def crash_signer() -> NoteSigner:
    """The fixed test key the crash writer signs checkpoints with."""
    return NoteSigner("pgw.test-crash", Ed25519PrivateKey.from_private_bytes(SIGNER_SEED))


def make_entry(seed: int, writer: int, seq: int) -> bytes:
    """Encoded synthetic audit entry (no personal data)."""
    return AuditEntry(
        time=format_time(_EPOCH + timedelta(microseconds=seq)),
        request_id=f"req-{seed}-{writer}-{seq}", kind="query",
        requester_org="hpf-test-centre", requester_subject="officer-test", role="requester",
        purpose="loan-review", agreements=(AgreementRef("agr-test", 1, "ab" * 32),),
        partners=("social_security",),
        released=(("social_security", "contribution_months", "generalize"),),
        subject_count=1, subject_pseudonyms=(subject_pseudonym(PSEUDONYM_KEY, f"syn-{seq}"),),
        decision="allow", reason="granted", response_digest="",
    ).encode()


async def _writer(log: AuditLog, seed: int, writer: int) -> None:
    seq = 0
    while True:
        result = await log.append(make_entry(seed, writer, seq))
        os.write(1, f"{result.index}\n".encode())
        seq += 1


async def main(dsn: str, hash_name: str, writers: int, seed: int) -> None:
    log = await AuditLog.open(dsn, hash_name, ORIGIN, crash_signer())
    try:
        await asyncio.wait_for(
            asyncio.gather(*(_writer(log, seed, w) for w in range(writers))), timeout=60)
    finally:
        await log.aclose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
