"""Subject-set items (``"v": 3`` bulk entries): the PRF, cross-checked one id at a time.

The reference below derives the key with ``hmac`` and encrypts one 16-byte block at a time,
so the vectorised path (numpy blocks, one AES call over the whole set, in-place XOR) is
checked against an independent one, id by id and in order.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given
from hypothesis import strategies as st

from gateway.audit import SubjectSet, set_item, subject_set_items
from gateway.audit._set_items import ITEM_BYTES, set_items
from gateway.packed_ids import PackedIds, pack_ids
from gateway.recorder import INLINE_SUBJECTS, AuditRecorder, Pseudonymised
from gateway.validate import person_id_check_char

KEY = bytes(range(32))


def _key_block(person_id: str) -> int:
    check = 10 if person_id[17] == "X" else int(person_id[17])
    return int(person_id[:17]) * 11 + check


def _reference(key: bytes, person_id: str) -> bytes:
    k = hmac.new(key, b"pgw/audit/subject-set-items/v1", hashlib.sha256).digest()
    block = b"pgw-set1" + _key_block(person_id).to_bytes(8, "big")
    sealed = Cipher(algorithms.AES(k), modes.ECB()).encryptor().update(block)
    return bytes(a ^ b for a, b in zip(sealed, block, strict=True))


def _ids(n: int) -> list[str]:
    out = []
    for i in range(n):
        first17 = f"3204021990{1 + i % 12:02d}{1 + i % 28:02d}{i % 1000:03d}"
        out.append(first17 + person_id_check_char(first17))
    return out


def _item(blob: bytes, i: int) -> bytes:
    return blob[ITEM_BYTES * i:ITEM_BYTES * (i + 1)]


_any_id = st.from_regex(r"[0-9]{17}[0-9X]", fullmatch=True)


@given(st.lists(_any_id, min_size=1, max_size=40))
def test_items_equal_the_one_at_a_time_reference(ids: list[str]) -> None:
    blob = subject_set_items(KEY, ids)
    assert len(blob) == ITEM_BYTES * len(ids)
    for i, pid in enumerate(ids):
        assert _item(blob, i) == _reference(KEY, pid) == set_item(KEY, pid)


def test_equal_ids_equal_items_and_distinct_ids_distinct_items() -> None:
    ids = _ids(3000)
    blob = subject_set_items(KEY, ids + ids[:5])
    items = [_item(blob, i) for i in range(len(blob) // ITEM_BYTES)]
    assert len(set(items[:3000])) == len(set(ids)) and items[3000:] == items[:5]


def test_packed_and_listed_ids_give_one_set() -> None:
    ids = _ids(50)
    assert subject_set_items(KEY, PackedIds(pack_ids(ids))) == subject_set_items(KEY, ids)


@pytest.mark.parametrize("n", [INLINE_SUBJECTS + 1, 3 * INLINE_SUBJECTS + 7])
def test_the_recorder_makes_the_set_off_the_loop_in_order(n: int) -> None:
    ids = _ids(n)
    recorder = AuditRecorder(None, KEY)  # type: ignore[arg-type]  # it never logs here
    async def make() -> Pseudonymised:
        return await recorder.pseudonymise(PackedIds(pack_ids(ids)))
    made = asyncio.run(make())
    assert made.count == n and made.blob is not None
    assert made.subject_set is not None and not made.subject_set.legacy
    assert made.subject_set == SubjectSet.of(made.blob)
    for i in (0, n // 2, n - 1):
        assert _item(made.blob, i) == _reference(KEY, ids[i])


def test_attack_decrypting_an_item_with_the_set_key_does_not_give_the_id() -> None:
    """Plain AES would be invertible by a holder of the derived key; the feed-forward is not:
    decrypting an item gives neither the id's block nor anything that names it."""
    pid = _ids(1)[0]
    k = hmac.new(KEY, b"pgw/audit/subject-set-items/v1", hashlib.sha256).digest()
    item = set_item(KEY, pid)
    opened = Cipher(algorithms.AES(k), modes.ECB()).decryptor().update(item)
    block = b"pgw-set1" + _key_block(pid).to_bytes(8, "big")
    assert opened != block and _key_block(pid).to_bytes(8, "big") not in opened


def test_attack_items_under_another_key_do_not_link() -> None:
    ids = _ids(100)
    mine, theirs = subject_set_items(KEY, ids), subject_set_items(bytes(32), ids)
    mine_items = {_item(mine, i) for i in range(len(ids))}
    assert not mine_items & {_item(theirs, i) for i in range(len(ids))}


@pytest.mark.parametrize(("packed", "message"), [
    (b"1" * 19, "not a multiple of 18"),
    (b"1" * 17 + b"x", "id #0 is not 17 digits"),        # not normalised
    (b"1" * 18 + b"1" * 16 + b"A1", "id #1 is not 17 digits"),
])
def test_malformed_input_is_refused_by_position_never_by_content(packed: bytes,
                                                                  message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        set_items(KEY, packed)
    assert "1111111" not in str(caught.value)


def test_a_short_key_is_refused() -> None:
    with pytest.raises(ValueError, match="want at least 32"):
        set_items(KEY[:16], b"1" * 18)
