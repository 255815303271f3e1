"""One numeric column of a scanned table, looked up for many packed ids with numpy.

Encrypting a column for 2^20 subjects once read the whole table into a dict of 2^20 strings
and mapped the subjects through it. Here the scanned ``(key, value)`` rows become two arrays:
the keys packed and turned into the int64 keys of :func:`gateway.packed_ids.id_keys`, the
values into float64, and the subjects are found by a sorted search. The outcome is that of
``SqliteSource.fetch_column`` then :func:`column_values`: a key that is not 18 ASCII
characters is dropped and one that is not 17 digits and a digit or ``X`` (a lower-case ``x``)
gets key -1, as neither can equal a validated, normalised subject; of duplicate keys the last
row scanned wins, as in the dict.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from operator import itemgetter
from typing import Any

import numpy as np

from connectors.sdk._compute_he import column_values
from connectors.sdk._schema import FieldType
from gateway.packed_ids import WIDTH, id_keys, pack_ids

__all__ = ["NUMPY_TYPES", "ColumnIndex", "column_arrays"]

#: Field types whose default decoder (``int``, ``float``, ``bool``) numpy can apply to SQLite
#: numbers at once, with the outcome of decoding each value and then ``float()``.
NUMPY_TYPES = frozenset({FieldType.INT, FieldType.FLOAT, FieldType.BOOL})
_SQLITE_NUMBERS = frozenset({int, float})


def column_arrays(batches: Iterable[Sequence[tuple[Any, ...]]], field: str,
                  decode: Callable[[Any], Any], numpy_type: FieldType | None
                  ) -> tuple[bytes, np.ndarray, np.ndarray]:
    """(packed keys, float64 values, present) of the ``(key, value)`` rows of a scan of the
    column's non-NULL values, read a batch at a time; rows whose key is not 18 ASCII
    characters are left out, and ``present`` is False where ``decode`` gave ``None``.

    ``numpy_type`` is the field's type when ``decode`` is that type's default decoder and it
    is one of :data:`NUMPY_TYPES`, else ``None`` (each value is decoded, then converted).
    Every value is decoded or converted, even one whose key no subject names, as the dict of
    ``fetch_column`` did; one that does not convert raises ``ValueError`` naming ``field``.
    """
    tables, values, present = [b""], [np.zeros(0)], [np.zeros(0, dtype=bool)]
    for rows in batches:
        # the two columns as lists (one zip(*rows) over a whole table: 0.6 s at 2^20 rows)
        keys, raw = list(map(itemgetter(0), rows)), list(map(itemgetter(1), rows))
        batch, held = _table_floats(raw, field, decode, numpy_type)
        table, kept = _pack_keys(keys)
        tables.append(table)
        values.append(batch if kept is None else batch[kept])
        present.append(held if kept is None else held[kept])
    return b"".join(tables), np.concatenate(values), np.concatenate(present)


def _table_floats(raw: Sequence[Any], field: str, decode: Callable[[Any], Any],
                  numpy_type: FieldType | None) -> tuple[np.ndarray, np.ndarray]:
    """(values, present) of the scanned values: present is False where ``decode`` gave None."""
    if numpy_type is not None and set(map(type, raw)) <= _SQLITE_NUMBERS:
        values = np.array(raw, dtype=np.float64)
        if numpy_type is FieldType.BOOL:
            return (values != 0).astype(np.float64), np.ones(len(values), dtype=bool)
        if numpy_type is FieldType.FLOAT:
            return values, np.ones(len(values), dtype=bool)
        if np.isfinite(values).all():  # int() truncates; an infinity is the decoder's to refuse
            return np.trunc(values), np.ones(len(values), dtype=bool)
    try:
        decoded = [decode(value) for value in raw]
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{field}: got a stored value its decoder refuses") from None
    return column_values(decoded, field)


def _pack_keys(keys: Sequence[Any]) -> tuple[bytes, np.ndarray | None]:
    """The keys packed, and the indices of the rows kept (``None``: all) when some key is
    not a string of 18 ASCII characters (such a key cannot equal a packed id)."""
    try:
        return pack_ids(keys), None
    except (TypeError, ValueError):
        pass
    kept = [i for i, key in enumerate(keys)
            if isinstance(key, str) and len(key) == WIDTH and key.isascii()]
    return "".join(keys[i] for i in kept).encode("ascii"), np.array(kept, dtype=np.intp)


class ColumnIndex:
    """A scanned column ready for lookups: the valid table keys sorted and unique (of equal
    keys the last row scanned), with their values and presence. Immutable once built, so one
    index can serve many reads (``_column_cache``): 17 bytes per row."""

    __slots__ = ("keys", "present", "values")

    def __init__(self, table: bytes, values: np.ndarray, present: np.ndarray) -> None:
        keys, _ = id_keys(table)
        order = np.argsort(keys, kind="stable")  # equal keys keep their scan order
        keys = keys[order]
        last = np.ones(len(keys), dtype=bool)  # the last of each run of equal keys
        last[:-1] = keys[1:] != keys[:-1]
        last &= keys >= 0  # key -1: not 17 digits and a digit or X; no valid id equals it
        self.keys, self.values = keys[last], values[order[last]]
        self.present = present[order[last]]

    @property
    def nbytes(self) -> int:
        return int(self.keys.nbytes + self.values.nbytes + self.present.nbytes)

    def lookup(self, ids: bytes) -> tuple[np.ndarray, np.ndarray]:
        """(values, 0.0 where not found; found) for each packed id. An id that is not 17
        digits and a digit or ``X`` is not found."""
        wanted, valid = id_keys(ids)
        out, found = np.zeros(len(wanted), dtype=np.float64), np.zeros(len(wanted), dtype=bool)
        if not len(self.keys):
            return out, found
        # sorted, the ids are found in one cache-friendly sweep (random: 0.2 s at 2^20)
        asked = np.argsort(wanted)
        at = np.empty(len(wanted), dtype=np.intp)
        at[asked] = np.searchsorted(self.keys, wanted[asked])
        at = np.minimum(at, len(self.keys) - 1)
        hit = valid & (self.keys[at] == wanted)
        found[hit], out[hit] = self.present[at[hit]], self.values[at[hit]]
        return out, found  # values are 0.0 where not present

