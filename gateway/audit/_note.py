"""C2SP signed notes (Ed25519): keys, key ids, signing and opening notes.

Formats, byte for byte (c2sp.org/signed-note):

* note: ``body`` + ``\\n`` + lines ``— <name> base64(key_id[4] || signature)\\n``;
* key id: ``SHA-256(name || 0x0A || type || pubkey)[:4]`` (big-endian uint32), with
  type 0x01 for note signatures and 0x04 for cosignatures;
* vkey ``name+hex8(key_id)+base64(type || pubkey)``; skey ``PRIVATE+KEY+`` the same with
  the 32-byte seed in place of the public key.

A key is bound to one signature type: a log key (0x01) cannot cosign and a witness key
(0x04) cannot sign notes, so one message can never be replayed as the other. Checkpoint
bodies and witness cosignatures over them live in :mod:`gateway.audit._checkpoint`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from gateway.ed25519 import signer_for

__all__ = [
    "NoteError", "NoteSignature", "NoteSigner", "NoteVerifier", "SIG_TYPE_COSIGNATURE_V1",
    "SIG_TYPE_ED25519", "SignedNote", "key_hash", "open_note", "sign_note",
]

SIG_TYPE_ED25519 = 0x01
SIG_TYPE_COSIGNATURE_V1 = 0x04
_SIG_TYPES = (SIG_TYPE_ED25519, SIG_TYPE_COSIGNATURE_V1)
_DASH = "\u2014 "
_MAX_SIGNATURES = 100
_HASH_RE = re.compile(r"[0-9a-f]{8}")


class NoteError(ValueError):
    """A note, key or cosignature is malformed, or not signed by enough known keys."""


def _b64decode(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise NoteError(f"{what}: not standard base64") from None
    if base64.b64encode(raw).decode("ascii") != text:
        raise NoteError(f"{what}: non-canonical base64")
    return raw


def _check_name(name: str) -> str:
    if not name or "+" in name or any(c.isspace() or c < " " for c in name):
        raise NoteError(f"key name {name!r}: want non-empty, no spaces, no '+'")
    return name


def _check_key(name: str, sig_type: int) -> None:
    _check_name(name)
    if sig_type not in _SIG_TYPES:
        raise NoteError(f"signature type {sig_type:#04x}: want 0x01 or 0x04")


def _check_text(text: str, what: str) -> None:
    if any(c < " " and c != "\n" for c in text):
        raise NoteError(f"{what}: contains a control character other than newline")


def key_hash(name: str, sig_type: int, public_key: bytes) -> int:
    """C2SP key id: first 4 bytes, big-endian, of SHA-256(name || 0x0A || type || pubkey)."""
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([sig_type]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes_raw()


def _split_key(text: str, prefix: str, what: str) -> tuple[str, int, int, bytes]:
    if not text.startswith(prefix):
        raise NoteError(f"{what}: want prefix {prefix!r}" if prefix else f"{what}: malformed")
    parts = text[len(prefix):].split("+", 2)  # base64 may itself contain "+"
    if len(parts) != 3 or not _HASH_RE.fullmatch(parts[1]):
        raise NoteError(f"{what}: want name+hex8+base64")
    raw = _b64decode(parts[2], what)
    if len(raw) != 33 or raw[0] not in _SIG_TYPES:
        raise NoteError(f"{what}: want type 0x01 or 0x04 followed by a 32-byte key")
    return _check_name(parts[0]), int(parts[1], 16), raw[0], raw[1:]


@dataclass(frozen=True)
class NoteVerifier:
    """A trusted public key: its name, Ed25519 key and signature type (0x01 or 0x04)."""

    name: str
    public_key: Ed25519PublicKey = field(repr=False)
    sig_type: int = SIG_TYPE_ED25519

    def __post_init__(self) -> None:
        _check_key(self.name, self.sig_type)

    @property
    def key_hash(self) -> int:
        """The 32-bit key id that prefixes this key's signatures."""
        return key_hash(self.name, self.sig_type, _raw_public(self.public_key))

    def vkey(self) -> str:
        """Encode as a C2SP verifier key ``name+hash+base64(type||pub)``."""
        raw = bytes([self.sig_type]) + _raw_public(self.public_key)
        return f"{self.name}+{self.key_hash:08x}+{base64.b64encode(raw).decode()}"

    @classmethod
    def from_vkey(cls, text: str) -> NoteVerifier:
        """Parse a verifier key; the key id must match the name and key."""
        name, kh, sig_type, pub = _split_key(text, "", "verifier key")
        verifier = cls(name, Ed25519PublicKey.from_public_bytes(pub), sig_type)
        if verifier.key_hash != kh:
            raise NoteError(f"verifier key {name}: key id {kh:08x}, "
                            f"want {verifier.key_hash:08x}")
        return verifier

    def verify(self, message: bytes, signature: bytes) -> bool:
        """True when ``signature`` is a valid Ed25519 signature of ``message``."""
        try:
            self.public_key.verify(signature, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class NoteSigner:
    """A private Ed25519 key with its name and signature type. Keep it out of logs."""

    name: str
    private_key: Ed25519PrivateKey = field(repr=False)
    sig_type: int = SIG_TYPE_ED25519

    def __post_init__(self) -> None:
        _check_key(self.name, self.sig_type)

    @classmethod
    def generate(cls, name: str, sig_type: int = SIG_TYPE_ED25519) -> NoteSigner:
        """A fresh random key (tests, key ceremonies)."""
        return cls(name, Ed25519PrivateKey.generate(), sig_type)

    def verifier(self) -> NoteVerifier:
        """The matching public verifier."""
        return NoteVerifier(self.name, self.private_key.public_key(), self.sig_type)

    @property
    def key_hash(self) -> int:
        """The 32-bit key id that prefixes this key's signatures."""
        return self.verifier().key_hash

    def sign(self, message: bytes) -> bytes:
        """Raw 64-byte Ed25519 signature of ``message``."""
        return signer_for(self.private_key).sign(message)

    def to_skey(self) -> str:
        """Encode as ``PRIVATE+KEY+name+hash+base64(type||seed)``; this is a secret."""
        raw = bytes([self.sig_type]) + self.private_key.private_bytes_raw()
        return f"PRIVATE+KEY+{self.name}+{self.key_hash:08x}+{base64.b64encode(raw).decode()}"

    @classmethod
    def from_skey(cls, text: str) -> NoteSigner:
        """Parse a signer key; the key id must match the derived public key."""
        name, kh, sig_type, seed = _split_key(text, "PRIVATE+KEY+", "signer key")
        signer = cls(name, Ed25519PrivateKey.from_private_bytes(seed), sig_type)
        if signer.key_hash != kh:
            raise NoteError(f"signer key {name}: key id {kh:08x}, want {signer.key_hash:08x}")
        return signer


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: key name, 32-bit key id and the signature bytes after it."""

    name: str
    key_hash: int
    sig: bytes

    def line(self) -> str:
        """The signature line, newline-terminated."""
        blob = self.key_hash.to_bytes(4, "big") + self.sig
        return f"{_DASH}{self.name} {base64.b64encode(blob).decode()}\n"


@dataclass(frozen=True)
class SignedNote:
    """An opened note: body text, every signature line, and the names that verified."""

    body: str
    signatures: list[NoteSignature]
    verified_names: list[str]


def _split_note(text: str) -> tuple[str, list[NoteSignature]]:
    """Split a note into body and parsed (unverified) signature lines."""
    _check_text(text, "note")
    cut = text.rfind("\n\n")
    if cut < 0 or not text.endswith("\n"):
        raise NoteError("note: want body, a blank line and signature lines")
    body, block = text[:cut + 1], text[cut + 2:].split("\n")[:-1]
    if not block or len(block) > _MAX_SIGNATURES:
        raise NoteError(f"note has {len(block)} signature lines: want 1-{_MAX_SIGNATURES}")
    signatures = []
    for line in block:
        name, sep, b64 = line.removeprefix(_DASH).partition(" ")
        if not line.startswith(_DASH) or not sep:
            raise NoteError("note signature line: want '\u2014 <name> <base64>'")
        blob = _b64decode(b64, f"signature by {name!r}")
        if len(blob) < 5:
            raise NoteError(f"signature by {name!r} is {len(blob)} bytes: want more than 4")
        signatures.append(NoteSignature(_check_name(name), int.from_bytes(blob[:4], "big"),
                                        blob[4:]))
    return body, signatures


def _index(verifiers: Sequence[NoteVerifier], sig_type: int) -> dict[tuple[str, int],
                                                                      NoteVerifier]:
    known: dict[tuple[str, int], NoteVerifier] = {}
    for v in verifiers:
        if v.sig_type != sig_type:
            raise NoteError(f"verifier {v.name}: signature type {v.sig_type:#04x}, "
                            f"want {sig_type:#04x}")
        if known.setdefault((v.name, v.key_hash), v) is not v:
            raise NoteError(f"verifiers: two keys named {v.name} with id {v.key_hash:08x}")
    return known


def sign_note(body: str, signers: Sequence[NoteSigner]) -> str:
    """Sign ``body`` (newline-terminated text) with every signer (type 0x01 keys)."""
    _check_text(body, "note body")
    if not body.endswith("\n"):
        raise NoteError("note body: want text ending in newline")
    if not signers:
        raise NoteError("sign_note: want at least one signer")
    lines = []
    for s in signers:
        if s.sig_type != SIG_TYPE_ED25519:
            raise NoteError(f"signer {s.name}: type {s.sig_type:#04x} cannot sign notes")
        lines.append(NoteSignature(s.name, s.key_hash, s.sign(body.encode())).line())
    return body + "\n" + "".join(lines)


def open_note(text: str, verifiers: Sequence[NoteVerifier]) -> SignedNote:
    """Parse and verify a note; at least one known key must have signed it.

    Signatures by unknown keys are kept but not verified; a bad signature by a known key
    rejects the whole note.
    """
    body, signatures = _split_note(text)
    known = _index(verifiers, SIG_TYPE_ED25519)
    verified: list[str] = []
    for sig in signatures:
        v = known.get((sig.name, sig.key_hash))
        if v is None:
            continue
        if not v.verify(body.encode(), sig.sig):
            raise NoteError(f"note signature by {sig.name} ({sig.key_hash:08x}) is invalid")
        if sig.name not in verified:
            verified.append(sig.name)
    if not verified:
        raise NoteError("note: got no signature by a known key, want at least one")
    return SignedNote(body, signatures, verified)
