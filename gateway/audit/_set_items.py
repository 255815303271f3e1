"""Subject-set items: how a bulk audit entry (``"v": 3``) names each of its subjects.

A bulk entry's subjects are GB 11643 ids, validated and normalised at the gateway (a bulk
compute's ids; nothing else has sets). Each becomes a 16-byte item, one AES-256 block with
feed-forward::

    item = E_K(b) XOR b,   b = "pgw-set1" || uint64_be(k)

with ``K = HMAC-SHA256(pseudonym key, "pgw/audit/subject-set-items/v1")`` and ``k`` the id's
integer key (:func:`gateway.packed_ids.id_keys`: its 17 digits times 11 plus the check value,
so equal exactly when the normalised ids are equal). 128 bits: two of 2^21 subjects share an
item with odds under 2^-86.

Like the HMAC pseudonym inline entries list (and ``"v": 2`` sets held), an item is a keyed
PRF value: without the pseudonym key, items cannot be linked to ids or across gateways; an
officer holding it recomputes one person's item (:func:`set_item`) and looks for it. The
feed-forward makes an item one-way even for a holder of ``K`` (plain AES could be decrypted
back to the id), who, as with HMAC, can only test candidate ids. Why not HMAC-SHA256 as
before: ``hashlib`` costs one Python call per id, 0.8 s per 2^20 subjects; this is a few
numpy passes and one AES call over the whole set, about 0.05 s (``bench/he_costs.py``).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from gateway.audit._subject_set import ITEM_BYTES
from gateway.packed_ids import WIDTH, id_keys, pack_ids

__all__ = ["ITEM_BYTES", "set_item", "set_items", "subject_set_items"]

_KEY_DOMAIN = b"pgw/audit/subject-set-items/v1"
_TAG = int.from_bytes(b"pgw-set1", "big")


def _cipher_key(key: bytes) -> bytes:
    if len(key) < 32:
        raise ValueError(f"pseudonym key is {len(key)} bytes: want at least 32")
    return hmac.new(key, _KEY_DOMAIN, hashlib.sha256).digest()


def set_items(key: bytes, packed: bytes) -> bytes:
    """The items of normalised ids packed ``WIDTH`` bytes each, concatenated in order.

    ``ValueError`` (naming a position, never an id) for a length that is not a whole number
    of ids or an id that is not 17 digits and a digit or ``X``."""
    cipher_key = _cipher_key(key)
    if len(packed) % WIDTH:
        raise ValueError(f"packed ids: {len(packed)} bytes is not a multiple of {WIDTH}")
    keys, ok = id_keys(packed)
    if not ok.all():
        raise ValueError(f"subject set: id #{int(np.argmin(ok))} is not 17 digits and a "
                         "digit or X (sets hold normalised GB 11643 ids only)")
    blocks = np.empty((len(keys), 2), dtype=">u8")
    blocks[:, 0], blocks[:, 1] = _TAG, keys
    plain = blocks.reshape(-1).view(np.uint64)  # the same bytes, XORed word by word below
    out = bytearray(plain.nbytes + 15)  # update_into wants a block's slack
    encryptor = Cipher(algorithms.AES(cipher_key), modes.ECB()).encryptor()
    encryptor.update_into(plain.data.cast("B"), out)
    encryptor.finalize()
    sealed = np.frombuffer(out, dtype=np.uint64, count=len(plain))
    np.bitwise_xor(sealed, plain, out=sealed)
    return bytes(memoryview(out)[:plain.nbytes])


def subject_set_items(key: bytes, subject_ids: Sequence[str]) -> bytes:
    """:func:`set_items` of a list of ids (``PackedIds`` are used as packed, not re-joined)."""
    data = getattr(subject_ids, "data", None)
    if not isinstance(data, bytes) or len(data) != WIDTH * len(subject_ids):
        data = pack_ids(subject_ids)
    return set_items(key, data)


def set_item(key: bytes, subject_id: str) -> bytes:
    """The item of one normalised id (what an officer's search looks for in a set)."""
    return subject_set_items(key, [subject_id])
