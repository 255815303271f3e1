"""A connector as a witness of the gateway's audit log.

Asked to cosign a checkpoint, the witness checks that the log's own key signed it, that it is
consistent (RFC 9162 consistency proof) with the last checkpoint this witness cosigned, persists
the new size and root durably, and only then cosigns (C2SP tlog-cosignature). So the hub cannot
rewrite or fork history without the partners noticing. An inconsistent request is refused
with the reason.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from google.protobuf.message import Message

from gateway.audit import (
    Checkpoint,
    NoteError,
    NoteSigner,
    NoteVerifier,
    ProofError,
    cosign,
    get_hasher,
    open_note,
    verify_consistency,
)
from gateway.errors import FailedPrecondition, FieldViolation, InvalidArgument, error_info


@dataclass(frozen=True)
class WitnessState:
    size: int
    root: bytes


class WitnessRefusal(FailedPrecondition):
    """The witness will not cosign: ``kind`` is ``WITNESS_ROLLBACK`` or ``WITNESS_INCONSISTENT``."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message, reason=kind.lower().replace("_", " "))
        self.kind = kind

    def details(self) -> list[Message]:
        return [error_info(self.kind)]


class StaleWitnessView(FailedPrecondition):
    """The gateway's idea of the witness's size is out of date; ``size`` is the real one."""

    def __init__(self, size: int) -> None:
        super().__init__(f"witness holds size {size}; resend with old_size={size}",
                         reason="witness size mismatch")
        self.size = size

    def details(self) -> list[Message]:
        return [error_info("WITNESS_SIZE", size=str(self.size))]


class Witness:
    """Cosigns checkpoints of one log (origin + log key) after checking consistency."""

    def __init__(self, signer: NoteSigner, log_verifier: NoteVerifier, *, origin: str,
                 hash_name: str, state_path: Path, clock: Callable[[], float] = time.time) -> None:
        self.signer, self.log_verifier, self.origin = signer, log_verifier, origin
        self.hasher = get_hasher(hash_name)
        self.state_path = state_path
        self._clock = clock
        # Cosign runs in worker threads, and several gateway replicas ask at once: the
        # check-persist-sign sequence must be atomic, or two calls pass the rollback check
        # against the same state and the held size can go backwards (and the shared .tmp
        # file races: FileNotFoundError).
        self._lock = threading.Lock()

    def state(self) -> WitnessState | None:
        try:
            data = json.loads(self.state_path.read_text())
        except FileNotFoundError:
            return None
        if data.get("origin") != self.origin:
            raise FailedPrecondition(f"witness state {self.state_path} is for another log "
                                     f"(origin {data.get('origin')!r}, want {self.origin!r})")
        return WitnessState(int(data["size"]), bytes.fromhex(data["root"]))

    def _persist(self, state: WitnessState) -> None:
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            json.dump({"origin": self.origin, "size": state.size, "root": state.root.hex()}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.state_path)
        dir_fd = os.open(self.state_path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def cosign(self, note: str, old_size: int, proof: Sequence[bytes]) -> tuple[str, int]:
        """Check and cosign ``note``; return (cosignature line, new size)."""
        with self._lock:
            return self._cosign(note, old_size, proof)

    def _cosign(self, note: str, old_size: int, proof: Sequence[bytes]) -> tuple[str, int]:
        try:
            opened = open_note(note, [self.log_verifier])
            checkpoint = Checkpoint.parse(opened.body)
        except (NoteError, ValueError) as exc:
            raise InvalidArgument(FieldViolation("checkpoint", f"not a checkpoint signed by "
                                                 f"the log key: {exc}")) from None
        if self.log_verifier.name not in opened.verified_names:
            raise InvalidArgument(FieldViolation("checkpoint", "not signed by the log key"))
        if checkpoint.origin != self.origin:
            raise InvalidArgument(FieldViolation(
                "checkpoint", f"origin: got {checkpoint.origin!r}, want {self.origin!r}"))
        held = self.state()
        held_size = held.size if held else 0
        if old_size != held_size:
            raise StaleWitnessView(held_size)
        if held is not None and held.size > 0:
            if checkpoint.size < held.size:
                raise WitnessRefusal(
                    "WITNESS_ROLLBACK", f"refused: checkpoint size {checkpoint.size} is below "
                    f"the size {held.size} this witness already cosigned (rollback)")
            try:
                verify_consistency(self.hasher, held.size, checkpoint.size, list(proof),
                                   held.root, checkpoint.root)
            except ProofError as exc:
                raise WitnessRefusal(
                    "WITNESS_INCONSISTENT", f"refused: checkpoint {checkpoint.size} is not "
                    f"consistent with the checkpoint {held.size} this witness cosigned: "
                    f"{exc}") from None
        self._persist(WitnessState(checkpoint.size, checkpoint.root))
        line = cosign(checkpoint, self.signer, int(self._clock()))
        return line, checkpoint.size
