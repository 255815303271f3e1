"""Identifier validation: resident ids, unified social credit codes, bank card numbers.

* Resident identity numbers follow GB 11643-1999: a 6-digit region code, an 8-digit birth
  date, a 3-digit sequence (odd for men) and an ISO 7064 MOD 11-2 check character.
* Unified social credit codes follow GB 32100-2015: 18 characters over a 31-symbol alphabet
  with a MOD 31 check character.
* Bank card numbers carry a Luhn (ISO/IEC 7812) check digit.

Error reasons never quote the identifier itself: they say *what* is wrong (length, position
of the bad character, date, checksum) so they can go into logs and gRPC details safely.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable, Iterable
from operator import mul

import numpy as np

from gateway.errors import FieldViolation, InvalidArgument

__all__ = [
    "credit_code_check_char",
    "is_valid_credit_code",
    "luhn_check_digit",
    "luhn_valid",
    "normalize_person_id",
    "person_id_check_char",
    "screen_rows",
    "validate_person_ids",
]

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_EARLIEST_BIRTH = _dt.date(1900, 1, 1)
_DIGITS = frozenset("0123456789")
_ID_SHAPE = re.compile(r"[0-9]{17}[0-9Xx]")

_CREDIT_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_VALUE = {c: i for i, c in enumerate(_CREDIT_ALPHABET)}
_CREDIT_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))


def person_id_check_char(first17: str) -> str:
    """The GB 11643-1999 check character for the first 17 digits of a resident id."""
    if len(first17) != 17 or not all(c in _DIGITS for c in first17):
        raise ValueError(f"want 17 digits, got {len(first17)} characters")
    total = sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def normalize_person_id(s: str, *, today: _dt.date | None = None) -> str:
    """Return ``s`` as a canonical resident id (upper-case ``X``) or raise ``ValueError``.

    ``today`` bounds the birth date from above (defaults to the current date); the reason in
    the ``ValueError`` never contains the id.
    """
    if not isinstance(s, str):
        raise ValueError(f"wrong type: got {type(s).__name__}, want str")
    if _ID_SHAPE.fullmatch(s) is None:
        _explain_shape(s)
    last = s[17].upper()
    try:
        birth = _dt.date(int(s[6:10]), int(s[10:12]), int(s[12:14]))
    except ValueError:
        raise ValueError("impossible birth date") from None
    if not _EARLIEST_BIRTH <= birth <= (today or _dt.date.today()):
        raise ValueError("impossible birth date")
    if _ID_CHECK[sum(map(mul, map(int, s[:17]), _ID_WEIGHTS)) % 11] != last:
        raise ValueError("checksum mismatch")
    return s[:17] + last


def _explain_shape(s: str) -> None:
    """Raise the precise reason why ``s`` is not 17 ASCII digits and a check character."""
    if len(s) != 18:
        raise ValueError(f"wrong length: got {len(s)} characters, want 18")
    for pos, ch in enumerate(s[:17], start=1):
        if ch not in _DIGITS:
            raise ValueError(f"non-digit character at position {pos}")
    raise ValueError("invalid check character at position 18")


def validate_person_ids(
    ids: Iterable[str],
    field: str = "subjects",
    *,
    today: _dt.date | None = None,
) -> list[str]:
    """Normalise every id, or raise ``InvalidArgument`` with one violation per bad id.

    Violations name the position (``subjects[3]``), never the id. Large lists are screened
    with numpy (about 0.3 us per id against 4 us); whatever the screen does not accept is
    judged by :func:`normalize_person_id`, so the outcome is the same id by id.
    """
    items = ids if isinstance(ids, list) else list(ids)
    accepted, lower_x = _screen(items, today or _dt.date.today())
    out = list(items)
    for i in lower_x:
        out[i] = items[i][:17] + "X"
    if len(accepted) == len(items) and all(accepted):
        return out
    violations: list[FieldViolation] = []
    for i, raw in enumerate(items):
        if i < len(accepted) and accepted[i]:
            continue
        try:
            out[i] = normalize_person_id(raw, today=today)
        except ValueError as exc:
            violations.append(FieldViolation(f"{field}[{i}]", str(exc)))
    if violations:
        raise InvalidArgument(violations)
    return out


#: Below this many ids the vectorised screen costs more than it saves.
_SCREEN_MIN = 64
_MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def _screen(items: list[str], today: _dt.date) -> tuple[list[bool], list[int]]:
    """Which ids surely pass :func:`normalize_person_id`, and which of those end in ``x``.

    Returns ``([], [])`` when the screen does not apply (a short list, a non-string, a wrong
    length); otherwise :func:`screen_rows` over the ids' ASCII bytes.
    """
    n = len(items)
    if n < _SCREEN_MIN or set(map(type, items)) != {str} or set(map(len, items)) != {18}:
        return [], []
    try:
        data = "".join(items).encode("ascii")
    except UnicodeEncodeError:
        return [], []
    ok, lower = screen_rows(np.frombuffer(data, dtype=np.uint8).reshape(n, 18), today)
    return ok.tolist(), np.flatnonzero(ok & lower).tolist()


def screen_rows(rows: np.ndarray, today: _dt.date) -> tuple[np.ndarray, np.ndarray]:
    """(ok, lower) per row of an ``(n, 18)`` uint8 array of id bytes, vectorised.

    ``ok``: the row passes :func:`normalize_person_id` (17 ASCII digits and a digit or X/x, a
    real calendar date between 1900-01-01 and ``today`` with Gregorian leap years, and the
    MOD 11-2 check); ``lower``: the row ends in a lower-case ``x``.
    """
    digits = rows[:, :17] - np.uint8(48)  # anything but 0-9 wraps to over 9
    ok = (digits <= 9).all(axis=1)
    last = rows[:, 17]
    lower = last == ord("x")
    expected = np.frombuffer(_ID_CHECK.encode(), dtype=np.uint8)[
        np.einsum("ij,j->i", digits, np.array(_ID_WEIGHTS, dtype=np.uint16)) % 11]
    ok &= np.where(lower, ord("X"), last) == expected  # a digit, X or x equals one of these
    date = np.einsum("ij,j->i", digits[:, 6:14], 10 ** np.arange(7, -1, -1, dtype=np.int64))
    year, month, day = date // 10000, date // 100 % 100, date % 100
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_days = _MONTH_DAYS[np.clip(month, 0, 12)] + ((month == 2) & leap)
    ok &= (month >= 1) & (month <= 12) & (day >= 1) & (day <= month_days)
    ok &= (date >= 19000101) & (date <= today.year * 10000 + today.month * 100 + today.day)
    return ok, lower


def credit_code_check_char(first17: str) -> str:
    """The GB 32100-2015 check character for the first 17 characters of a credit code."""
    if len(first17) != 17:
        raise ValueError(f"want 17 characters, got {len(first17)}")
    total = 0
    for pos, (ch, weight) in enumerate(zip(first17, _CREDIT_WEIGHTS, strict=True), start=1):
        value = _CREDIT_VALUE.get(ch)
        if value is None:
            raise ValueError(f"character outside the code alphabet at position {pos}")
        total += value * weight
    return _CREDIT_ALPHABET[(31 - total % 31) % 31]


def is_valid_credit_code(s: str) -> bool:
    """True when ``s`` is an 18-character unified social credit code with a correct check."""
    if not isinstance(s, str) or len(s) != 18 or s[17] not in _CREDIT_VALUE:
        return False
    try:
        return credit_code_check_char(s[:17]) == s[17]
    except ValueError:
        return False


def _luhn_sum(digits: str, double_first: Callable[[int], bool]) -> int:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if double_first(i):
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total


def _all_digits(s: object) -> bool:
    return isinstance(s, str) and bool(s) and all(c in _DIGITS for c in s)


def luhn_valid(s: str) -> bool:
    """True when ``s`` is at least two digits and its last digit is a correct Luhn check."""
    if not _all_digits(s) or len(s) < 2:
        return False
    return _luhn_sum(s, lambda i: i % 2 == 1) % 10 == 0


def luhn_check_digit(s: str) -> str:
    """The Luhn check digit to append to the digit string ``s``."""
    if not _all_digits(s):
        raise ValueError("want a non-empty string of digits")
    return str((10 - _luhn_sum(s, lambda i: i % 2 == 0) % 10) % 10)
