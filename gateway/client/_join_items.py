"""Requester-side id checks for joins: GB 11643-1999 ids, normalised, fast on good ones.

Errors name the item's position, never the id.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Sequence

from gateway.validate import normalize_person_id


def check_items(items: Sequence[str]) -> list[str]:
    """Normalised ids; ``ValueError("items[i]: reason")`` for the first bad one (no id).

    A fast path (shape, cached birth date, ISO 7064 MOD 11-2 through one base-13 parse:
    13 = 2 mod 11, so the weights 2^k mod 11 come for free) accepts good ids at about
    0.5 us each; anything it rejects is re-checked by :func:`normalize_person_id` for the reason.
    """
    out = []
    dates: dict[str, bool] = {}
    shape, check = _SHAPE.fullmatch, "10X98765432"
    for i, raw in enumerate(items):
        if isinstance(raw, str) and shape(raw):
            ok = dates.get(raw[6:14])
            if ok is None:
                ok = dates[raw[6:14]] = _birth_ok(raw[6:14])
            last = raw[17].upper()
            if ok and check[(2 * int(raw[:17], 13)) % 11] == last:
                out.append(raw if last == raw[17] else raw[:17] + last)
                continue
        try:
            out.append(normalize_person_id(raw))
        except ValueError as exc:
            raise ValueError(f"items[{i}]: not a GB 11643-1999 id ({exc})") from None
    return out


_SHAPE = re.compile(r"[0-9]{17}[0-9Xx]")


def _birth_ok(yyyymmdd: str) -> bool:
    try:
        birth = datetime.date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:]))
    except ValueError:
        return False
    return datetime.date(1900, 1, 1) <= birth <= datetime.date.today()
