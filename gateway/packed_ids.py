"""Person ids in bulk: one buffer of 18-byte ASCII ids, the wire form of compute subjects.

A compute names up to 2^21 people. Sent as repeated protobuf strings, every hop (SDK, gateway,
each connector) paid for 2^21 Python strings: decoding, listing, joining to hash, joining again
to validate. Packed, the ids stay one ``bytes`` object from the requester to the connector's
numpy lookup: hashing is one call, validation one vectorised pass (:func:`screen_rows`), and
equality of ids is equality of the int64 keys of :func:`id_keys`.

Only the SDK, the gateway and the connectors use this form; error messages name positions,
never ids.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, overload

import numpy as np

from gateway.errors import FieldViolation, InvalidArgument
from gateway.validate import normalize_person_id, screen_rows

__all__ = ["INLINE_IDS", "WIDTH", "PackedIds", "checked_beside", "has_duplicates", "id_keys",
           "ids_digest", "in_thread_if_many", "pack_ids", "receive_ids", "unpack_ids",
           "validate_packed_ids"]

#: Bytes per id: GB 11643-1999 resident ids are 18 ASCII characters.
WIDTH = 18
#: Up to this many ids are checked on the event loop (a thread hand-off costs more).
INLINE_IDS = 4096
_MAX_VIOLATIONS = 20
T = TypeVar("T")
_POWERS = 10 ** np.arange(16, -1, -1, dtype=np.int64)


@dataclass(frozen=True, eq=False)
class PackedIds(Sequence[str]):
    """Validated, normalised ids in one packed buffer, readable as a sequence of strings.

    Code that takes ``Sequence[str]`` (budgets, the audit recorder) works on it unchanged;
    code on the bulk path (digests, pseudonyms, lookups) reads ``data`` directly.
    """

    data: bytes

    def __post_init__(self) -> None:
        if len(self.data) % WIDTH:
            raise ValueError(f"packed ids: got {len(self.data)} bytes, want a multiple of "
                             f"{WIDTH}")

    def __len__(self) -> int:
        return len(self.data) // WIDTH

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return unpack_ids(self.data)[index]
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        index %= len(self)
        return self.data[index * WIDTH:(index + 1) * WIDTH].decode("ascii")

    def __iter__(self) -> Iterator[str]:
        return iter(unpack_ids(self.data))


def pack_ids(ids: Sequence[str], field: str = "subjects") -> bytes:
    """The ids' ASCII bytes, concatenated; ``ValueError`` naming the first id (by position)
    that is not 18 ASCII characters. Content (checksum, date) is the gateway's to check."""
    if not ids:
        return b""
    if set(map(len, ids)) == {WIDTH}:
        try:
            return "".join(ids).encode("ascii")
        except UnicodeEncodeError:
            pass
    for i, pid in enumerate(ids):
        if len(pid) != WIDTH or not pid.isascii():
            raise ValueError(f"{field}[{i}]: want 18 ASCII characters, got {len(pid)} "
                             "characters" + ("" if pid.isascii() else " with non-ASCII ones"))
    raise AssertionError("unreachable")  # pragma: no cover


def unpack_ids(data: bytes) -> list[str]:
    """The ids of a packed buffer, as strings."""
    text = data.decode("ascii")
    return [text[i:i + WIDTH] for i in range(0, len(text), WIDTH)]


def ids_digest(data: bytes) -> bytes:
    """SHA-256 over the packed ids in order (what a signed ``EncryptSpec`` binds)."""
    return hashlib.sha256(data).digest()


def validate_packed_ids(data: bytes, field: str = "subjects", *,
                        today: _dt.date | None = None) -> bytes:
    """The ids normalised (``x`` -> ``X``), or ``InvalidArgument`` naming each bad position.

    Vectorised; the rows the screen does not accept go through :func:`normalize_person_id`
    for their reason, so the outcome and messages are those of ``validate_person_ids``.
    """
    if len(data) % WIDTH:
        raise InvalidArgument(FieldViolation(field, f"got {len(data)} bytes, want a multiple "
                                             f"of {WIDTH} (one 18-character id each)"))
    rows = np.frombuffer(data, dtype=np.uint8).reshape(-1, WIDTH)
    ok, lower = screen_rows(rows, today or _dt.date.today())
    if not ok.all():
        violations = []
        for i in np.flatnonzero(~ok)[:_MAX_VIOLATIONS].tolist():
            raw = bytes(rows[i]).decode("latin-1")
            try:
                normalize_person_id(raw, today=today)
                reason = "not a GB 11643-1999 id"  # unreachable while the screen is exact
            except ValueError as exc:
                reason = str(exc)
            violations.append(FieldViolation(f"{field}[{i}]", reason))
        raise InvalidArgument(violations)
    if not lower.any():
        return bytes(data)
    fixed = rows.copy()
    fixed[lower, 17] = ord("X")
    return fixed.tobytes()


def id_keys(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(key, ok) per packed id: ``key`` is an int64 equal for two ids exactly when their
    bytes are equal, for every row where ``ok`` (17 ASCII digits then a digit or ``X``); other
    rows get key -1. Normalised ids (upper-case ``X``) compare like their strings."""
    rows = np.frombuffer(data, dtype=np.uint8).reshape(-1, WIDTH)
    digits = rows[:, :17] - np.uint8(48)  # anything but 0-9 wraps to over 9
    last = rows[:, 17]
    check = np.where(last == ord("X"), np.uint8(10), last - np.uint8(48))
    ok = (digits <= 9).all(axis=1) & (check <= 10)
    keys = np.einsum("ij,j->i", digits, _POWERS) * 11 + check
    return np.where(ok, keys, -1), ok


def has_duplicates(data: bytes) -> bool:
    """Whether any id occurs twice in a buffer of validated, normalised ids."""
    keys, _ = id_keys(data)
    keys.sort()
    return bool((keys[1:] == keys[:-1]).any())


async def receive_ids(stream: AsyncIterator[Any], count: int) -> bytes:
    """The packed ids of the ``SubjectChunk`` parts (``message.subjects.ids``) that follow in
    ``stream``, joined; reading stops as soon as more than ``count`` ids have arrived, so the
    caller can refuse a length other than ``count * WIDTH``."""
    parts: list[bytes] = []
    size = 0
    async for message in stream:
        parts.append(message.subjects.ids)
        size += len(parts[-1])
        if size > count * WIDTH:
            break
    return b"".join(parts)


async def in_thread_if_many(check: Callable[[bytes], T], data: bytes) -> T:
    """``check(data)``: on the event loop for up to INLINE_IDS ids, else in a worker thread."""
    if len(data) <= INLINE_IDS * WIDTH:
        return check(data)
    return await asyncio.to_thread(check, data)


async def checked_beside(check: Callable[[bytes], bytes], data: bytes,
                         work: Callable[[bytes], Awaitable[T]]) -> tuple[bytes, T]:
    """``(check(data), work(checked ids))`` with ``work`` started on the raw ``data`` while
    ``check`` validates it (threads for many ids, :func:`in_thread_if_many`): the outcome of
    checking first. An error of ``check`` wins; if it normalised the ids (a lower-case x),
    ``work`` runs again on them."""
    checked, done = await asyncio.gather(in_thread_if_many(check, data), work(data),
                                         return_exceptions=True)
    if isinstance(checked, BaseException):
        raise checked
    if checked != data:
        return checked, await work(checked)
    if isinstance(done, BaseException):
        raise done
    return checked, done
