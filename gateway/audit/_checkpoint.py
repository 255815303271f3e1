"""C2SP checkpoints and witness cosignatures (cosignature/v1) over signed notes.

Formats, byte for byte (c2sp.org/tlog-checkpoint, /tlog-cosignature):

* checkpoint body: ``origin\\nsize\\nbase64(root)\\n`` plus optional extension lines;
* cosignature: Ed25519 over ``cosignature/v1\\ntime <secs>\\n`` + body, carried as
  ``u64be(time) || sig`` in a note signature line of a type 0x04 (witness) key.

Keys, key ids and the signed-note format itself live in :mod:`gateway.audit._note`.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.audit._note import (
    SIG_TYPE_COSIGNATURE_V1,
    NoteError,
    NoteSignature,
    NoteSigner,
    NoteVerifier,
    _b64decode,
    _check_text,
    _index,
    _split_note,
)

__all__ = ["Checkpoint", "cosign", "verify_cosignatures"]

_COSIG_HEADER = "cosignature/v1\n"
_SIZE_RE = re.compile(r"0|[1-9][0-9]*")


@dataclass(frozen=True)
class Checkpoint:
    """A tlog-checkpoint body: log origin, tree size and root hash (plus extension lines)."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin:
            raise NoteError(f"checkpoint origin {self.origin!r}: want one non-empty line")
        if self.size < 0 or not self.root:
            raise NoteError(f"checkpoint size {self.size}, root of {len(self.root)} bytes: "
                            "want size >= 0 and a non-empty root")
        if any(not e or "\n" in e for e in self.extensions):
            raise NoteError("checkpoint extension lines: want non-empty single lines")

    def body(self) -> str:
        """The note text: ``origin\\nsize\\nbase64(root)\\n`` then any extension lines."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode(),
                 *self.extensions]
        return "\n".join(lines) + "\n"

    @classmethod
    def parse(cls, body: str) -> Checkpoint:
        """Parse a checkpoint body (note text, without signatures)."""
        _check_text(body, "checkpoint")
        if not body.endswith("\n"):
            raise NoteError("checkpoint: want a body ending in newline")
        lines = body[:-1].split("\n")
        if len(lines) < 3:
            raise NoteError(f"checkpoint has {len(lines)} lines: want at least 3")
        if not _SIZE_RE.fullmatch(lines[1]):
            raise NoteError(f"checkpoint size {lines[1]!r}: want decimal, no leading zeros")
        root = _b64decode(lines[2], "checkpoint root hash")
        return cls(lines[0], int(lines[1]), root, tuple(lines[3:]))


def _cosigned_message(body: str, timestamp: int) -> bytes:
    return f"{_COSIG_HEADER}time {timestamp}\n{body}".encode()


def cosign(checkpoint: Checkpoint | str, witness_signer: NoteSigner, timestamp: int) -> str:
    """A witness's cosignature/v1 line for a checkpoint (object or body), newline-terminated.

    Append it to the signed checkpoint note. The caller (the witness) must first check
    the checkpoint is consistent with the last one it cosigned.
    """
    body = checkpoint.body() if isinstance(checkpoint, Checkpoint) else checkpoint
    Checkpoint.parse(body)
    if witness_signer.sig_type != SIG_TYPE_COSIGNATURE_V1:
        raise NoteError(f"witness {witness_signer.name}: key type "
                        f"{witness_signer.sig_type:#04x}, want 0x04")
    if not 0 <= timestamp < 2**63:
        raise NoteError(f"cosignature time {timestamp}: want 0 <= time < 2**63")
    sig = witness_signer.sign(_cosigned_message(body, timestamp))
    blob = timestamp.to_bytes(8, "big") + sig
    return NoteSignature(witness_signer.name, witness_signer.key_hash, blob).line()


def verify_cosignatures(note_text: str, witness_verifiers: Sequence[NoteVerifier],
                        required: int, *, max_time: int | None = None) -> list[str]:
    """Verify witness cosignatures on a checkpoint note; return the names that verified.

    Lines from unknown keys are ignored; a bad cosignature from a known witness, or one
    timestamped after ``max_time`` (when given), rejects the note. Raises
    :class:`NoteError` when fewer than ``required`` distinct witnesses verified.
    """
    if required < 0:
        raise ValueError(f"required cosignatures {required}: want >= 0")
    body, signatures = _split_note(note_text)
    Checkpoint.parse(body)
    known = _index(witness_verifiers, SIG_TYPE_COSIGNATURE_V1)
    verified: list[str] = []
    for sig in signatures:
        v = known.get((sig.name, sig.key_hash))
        if v is None:
            continue
        if len(sig.sig) != 72:
            raise NoteError(f"cosignature by {sig.name} is {len(sig.sig)} bytes: want 72")
        timestamp = int.from_bytes(sig.sig[:8], "big")
        if timestamp >= 2**63 or (max_time is not None and timestamp > max_time):
            raise NoteError(f"cosignature by {sig.name}: time {timestamp} out of range")
        if not v.verify(_cosigned_message(body, timestamp), sig.sig[8:]):
            raise NoteError(f"cosignature by {sig.name} ({sig.key_hash:08x}) is invalid")
        if sig.name not in verified:
            verified.append(sig.name)
    if len(verified) < required:
        raise NoteError(f"got {len(verified)} valid cosignatures {verified}, "
                        f"want at least {required}")
    return verified
