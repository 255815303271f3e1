"""Keyed pseudonyms of data subjects: how the audit log names people without their ids.

A pseudonym is ``HMAC-SHA256(key, "pgw/audit/subject-pseudonym/v1\\x00" || id)``: 32 bytes,
written as 64 lowercase hex digits inside an entry (:func:`subject_pseudonyms`), or as the raw
32 bytes in the subject set of a ``"v": 2`` entry (:func:`pseudonym_blob`), as written before
set items (:mod:`gateway.audit._set_items`) replaced them in bulk entries.
An officer holding the key recomputes it from a person's id to answer "who accessed this
person?"; without the key the log cannot be linked back to ids (nor across gateways).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from gateway.hmac_pads import hmac_sha256_many

__all__ = ["pseudonym_blob", "subject_pseudonym", "subject_pseudonyms"]

_PSEUDONYM_DOMAIN = b"pgw/audit/subject-pseudonym/v1\x00"


def _check_key(key: bytes) -> None:
    if len(key) < 32:
        raise ValueError(f"pseudonym key is {len(key)} bytes: want at least 32")


def _slices(packed: bytes, width: int) -> Iterable[bytes]:
    return (packed[i:i + width] for i in range(0, len(packed), width))


def _messages(key: bytes, subject_ids: Sequence[str]) -> Iterable[bytes]:
    """The ids as bytes; packed ids (``gateway.packed_ids.PackedIds``) are sliced from their
    buffer, without making strings."""
    _check_key(key)
    data = getattr(subject_ids, "data", None)
    if isinstance(data, bytes) and len(subject_ids) and not len(data) % len(subject_ids):
        return _slices(data, len(data) // len(subject_ids))
    return (s.encode() for s in subject_ids)


def subject_pseudonym(key: bytes, subject_id: str) -> str:
    """Keyed pseudonym of a data subject: hex HMAC-SHA256 under a fixed domain prefix."""
    return subject_pseudonyms(key, [subject_id])[0]


def subject_pseudonyms(key: bytes, subject_ids: Sequence[str]) -> tuple[str, ...]:
    """:func:`subject_pseudonym` of each id; the keyed state is set up once for all of them."""
    return tuple(hmac_sha256_many(key, _messages(key, subject_ids),  # type: ignore[arg-type]
                                  _PSEUDONYM_DOMAIN, hexdigest=True))


def pseudonym_blob(key: bytes, subject_ids: Sequence[str]) -> bytes:
    """The raw 32-byte pseudonyms of ``subject_ids``, concatenated in order: the stored form of
    a bulk subject set (2^20 subjects: 32 MiB, and no hex or JSON made for them)."""
    return b"".join(hmac_sha256_many(key, _messages(key, subject_ids),  # type: ignore[arg-type]
                                     _PSEUDONYM_DOMAIN))
