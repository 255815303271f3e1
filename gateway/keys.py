"""Ed25519 key files: generate, load, and name keys by a short id.

The gateway signs ReleaseSpecs and checkpoints with Ed25519 private keys kept as PKCS#8 PEM
files (mode 0600); connectors and verifiers hold the public halves as SubjectPublicKeyInfo PEM.
A key id is the first 8 bytes (hex) of SHA-256 over the raw public key, so several keys can
be trusted at once during a rotation and a signature names the key that made it.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from gateway.errors import ConfigError


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def write_private_key(path: Path, key: Ed25519PrivateKey) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)


def write_public_key(path: Path, key: Ed25519PublicKey) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(key.public_bytes(serialization.Encoding.PEM,
                                      serialization.PublicFormat.SubjectPublicKeyInfo))


def generate_keypair(private_path: Path, public_path: Path) -> Ed25519PrivateKey:
    """Create a fresh Ed25519 key pair on disk and return the private key."""
    key = Ed25519PrivateKey.generate()
    write_private_key(private_path, key)
    write_public_key(public_path, key.public_key())
    return key


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot load Ed25519 private key: {type(exc).__name__}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path}: got {type(key).__name__}, want an Ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot load Ed25519 public key: {type(exc).__name__}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"{path}: got {type(key).__name__}, want an Ed25519 public key")
    return key


def write_secret(path: Path, nbytes: int = 32) -> bytes:
    """Write a random secret (for HMAC pseudonym keys), mode 0600, and return it."""
    secret = os.urandom(nbytes)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(secret.hex().encode())
    return secret


def load_secret(path: Path) -> bytes:
    try:
        secret = bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot load secret: {type(exc).__name__}") from exc
    if len(secret) < 16:
        raise ConfigError(f"{path}: secret too short: got {len(secret)} bytes, want >= 16")
    return secret
