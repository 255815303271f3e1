"""Per-call audit receipts: save them as JSON and verify them offline.

A receipt holds the canonical audit entry of one call, its leaf index, an RFC 9162 inclusion
proof and the C2SP checkpoint (signed by the log key) the proof is against. Anyone with the
log's public key can check it without contacting the gateway.
"""

from __future__ import annotations

from pathlib import Path

from google.protobuf import json_format

from gateway.audit import (
    Checkpoint,
    NoteError,
    NoteVerifier,
    ProofError,
    get_hasher,
    open_note,
    verify_inclusion,
)
from gateway.pb.pgw.v1 import common_pb2


class ReceiptError(ValueError):
    """The receipt does not prove what it claims; the message says why."""


def save_receipt(receipt: common_pb2.AuditReceipt, path: Path) -> None:
    path.write_text(json_format.MessageToJson(receipt, preserving_proto_field_name=True) + "\n")


def load_receipt(path: Path) -> common_pb2.AuditReceipt:
    try:
        return json_format.Parse(path.read_text(), common_pb2.AuditReceipt())
    except (OSError, json_format.ParseError) as exc:
        raise ReceiptError(f"{path}: not a receipt: {exc}") from None


def verify_receipt(receipt: common_pb2.AuditReceipt, log_key: NoteVerifier) -> Checkpoint:
    """Check the checkpoint signature and the inclusion proof; return the checkpoint."""
    try:
        opened = open_note(receipt.checkpoint, [log_key])
    except NoteError as exc:
        raise ReceiptError(f"checkpoint: {exc}") from None
    if log_key.name not in opened.verified_names:
        raise ReceiptError("checkpoint: not signed by the log key")
    checkpoint = Checkpoint.parse(opened.body)
    if checkpoint.size != receipt.tree_size:
        raise ReceiptError(f"tree size: receipt says {receipt.tree_size}, "
                           f"checkpoint says {checkpoint.size}")
    try:
        hasher = get_hasher(receipt.hash or "sha256")
        verify_inclusion(hasher, receipt.leaf_index, receipt.tree_size,
                         hasher.leaf(receipt.entry), list(receipt.inclusion_proof),
                         checkpoint.root)
    except (ProofError, ValueError) as exc:
        raise ReceiptError(f"inclusion proof: {exc}") from None
    return checkpoint
