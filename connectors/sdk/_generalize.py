"""Coarsening transforms: ``generalize`` (bands, year, prefix) and ``predicate`` (a boolean).

Number labels use one format for ints and floats alike: the half-open interval
``"[lo, hi)"`` (``lo <= v < hi``) for a band or the span between two edges, ``"<e0"`` below
the first edge and ``">=en"`` from the last. Integral bounds print without a decimal point.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Sequence
from datetime import date
from itertools import pairwise
from typing import Any

from connectors.sdk._schema import FieldType as T
from connectors.sdk._transform_base import (
    NUMERIC,
    TEXT,
    Transform,
    TransformParamError,
    check_value,
    fmt_number,
    is_int,
    is_number,
)

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
    ">": operator.gt, ">=": operator.ge, "in": lambda v, options: v in options,
}
_ORDERED = NUMERIC | {T.DATE, T.MONTH}


_BAND = re.compile(r"\[(-?[0-9.e+-]+), (-?[0-9.e+-]+)\)")
_YEAR = re.compile(r"\d{4}")
_YEAR_MONTH = re.compile(r"\d{4}-\d{2}")


class Generalize(Transform):
    """Numbers to a ``band`` or ``edges`` interval, DATE/MONTH ``to`` year(-month), CODE to a
    ``prefix`` of n characters. The output is always a STRING label."""

    name = "generalize"
    accepts = frozenset({T.INT, T.FLOAT, T.CODE, T.DATE, T.MONTH})

    def __init__(self, field_type: T, *, band: float | None = None,
                 edges: Sequence[float] | None = None, to: str | None = None,
                 prefix: int | None = None) -> None:
        super().__init__(field_type)
        self.output_type = T.STRING
        given = [k for k, v in (("band", band), ("edges", edges), ("to", to),
                                ("prefix", prefix)) if v is not None]
        want = {T.INT: ("band", "edges"), T.FLOAT: ("band", "edges"), T.DATE: ("to",),
                T.MONTH: ("to",), T.CODE: ("prefix",)}[field_type]
        for extra in given:
            if extra not in want:
                raise TransformParamError(extra, f"not a parameter for {field_type.value} fields")
        if len(given) != 1:
            raise TransformParamError(
                want[0], f"give exactly one of {' or '.join(want)} for {field_type.value} fields")
        ints = field_type is T.INT
        self._map: Callable[[Any], str]
        if band is not None:
            if not is_number(band) or band <= 0 or (ints and not is_int(band)):
                raise TransformParamError(
                    "band", f"got {band!r}, want {'an integer' if ints else 'a number'} > 0")
            self.band = band
            self._map = self._band
        elif edges is not None:
            if (not isinstance(edges, (list, tuple)) or not edges
                    or not all(is_int(e) if ints else is_number(e) for e in edges)
                    or any(a >= b for a, b in pairwise(edges))):
                raise TransformParamError(
                    "edges", f"got {edges!r}, want a non-empty strictly ascending list of "
                    f"{'integers' if ints else 'numbers'}")
            self.edges = tuple(edges)
            self._map = self._edges
        elif to is not None:
            allowed = ("year",) if field_type is T.MONTH else ("year", "year-month")
            if to not in allowed:
                hint = " (a month is already year-month: use plain)" if to == "year-month" else ""
                raise TransformParamError(
                    "to", f"got {to!r}, want one of {list(allowed)}{hint}")
            self.width = width = 4 if to == "year" else 7
            self._map = lambda v: v[:width]
        else:
            if not is_int(prefix) or prefix is None or prefix < 1:
                raise TransformParamError("prefix", f"got {prefix!r}, want an integer >= 1")
            self.prefix = prefix
            self._map = self._prefix

    def _apply(self, value: Any) -> str:
        return self._map(value)

    def conforms(self, output: Any) -> bool:
        """A label this generalisation can produce, and nothing finer."""
        if output is None:
            return True
        if not isinstance(output, str):
            return False
        if self._map == self._edges:
            return output in self._edge_labels()
        if self._map == self._band:
            m = _BAND.fullmatch(output)
            if m is None:
                return False
            lo, hi = float(m.group(1)), float(m.group(2))
            k = lo / self.band
            return math.isclose(hi - lo, self.band) and math.isclose(k, round(k))
        if self._map == self._prefix:
            return len(output) == self.prefix
        return (_YEAR if self.width == 4 else _YEAR_MONTH).fullmatch(output) is not None

    def _edge_labels(self) -> set[str]:
        labels = {f"<{fmt_number(self.edges[0])}", f">={fmt_number(self.edges[-1])}"}
        labels.update(f"[{fmt_number(lo)}, {fmt_number(hi)})" for lo, hi in pairwise(self.edges))
        return labels

    def _band(self, v: float) -> str:
        if is_int(v) and is_int(self.band):
            lo = (v // self.band) * self.band
            return f"[{lo}, {lo + self.band})"
        k = math.floor(v / self.band)
        if k * self.band > v:  # float rounding pushed v/band up to the next integer
            k -= 1
        elif (k + 1) * self.band <= v:
            k += 1
        return f"[{fmt_number(k * self.band)}, {fmt_number((k + 1) * self.band)})"

    def _edges(self, v: float) -> str:
        if v < self.edges[0]:
            return f"<{fmt_number(self.edges[0])}"
        for lo, hi in pairwise(self.edges):
            if lo <= v < hi:
                return f"[{fmt_number(lo)}, {fmt_number(hi)})"
        return f">={fmt_number(self.edges[-1])}"

    def _prefix(self, v: str) -> str:
        if len(v) <= self.prefix:
            raise ValueError(f"code has {len(v)} characters, want more than prefix "
                             f"{self.prefix}: a prefix that long would reveal the whole code")
        return v[:self.prefix]


def _literal(value: Any, field_type: T) -> Any:
    """Check one predicate operand against the field type; dates normalise to ISO strings."""
    if field_type in NUMERIC:
        ok, want = is_number(value), "a number"
    elif field_type in TEXT:
        ok, want = isinstance(value, str), "a string"
    elif field_type is T.BOOL:
        ok, want = isinstance(value, bool), "true or false"
    else:
        want = "a 'YYYY-MM-DD' date" if field_type is T.DATE else "a 'YYYY-MM' month string"
        if isinstance(value, date) and field_type is T.DATE:
            value = value.isoformat()
        try:
            ok = check_value(value, field_type) == value
            date.fromisoformat(value if field_type is T.DATE else value + "-01")
        except (TypeError, ValueError):
            ok = False
    if not ok:
        raise TransformParamError(
            "value", f"got {value!r}, want {want} for a {field_type.value} field")
    return value


class Predicate(Transform):
    """Release only whether ``value <op> operand`` holds: a BOOL, never the value itself.

    Ordering operators apply to numbers, dates and months (``YYYY-MM`` strings compare
    lexically, which is chronological); strings, codes and booleans allow ``==``, ``!=``
    and ``in`` (with a non-empty list of operands).
    """

    name = "predicate"
    accepts = frozenset({T.INT, T.FLOAT, T.STRING, T.CODE, T.BOOL, T.DATE, T.MONTH})

    def __init__(self, field_type: T, *, op: str | None = None, value: Any = None) -> None:
        super().__init__(field_type)
        if op not in _OPS:
            raise TransformParamError("op", f"got {op!r}, want one of: {' '.join(_OPS)}")
        if op in ("<", "<=", ">", ">=") and field_type not in _ORDERED:
            raise TransformParamError(
                "op", f"got {op!r}, ordering does not apply to {field_type.value} fields "
                "(want ==, != or in)")
        if value is None:
            raise TransformParamError("value", "missing: a predicate needs a value")
        if op == "in":
            if not isinstance(value, (list, tuple)) or not value:
                raise TransformParamError("value", f"got {value!r}, want a non-empty list for in")
            self.value: Any = tuple(_literal(v, field_type) for v in value)
        else:
            self.value = _literal(value, field_type)
        self.op = op
        self._test = _OPS[op]
        self.output_type = T.BOOL

    def _apply(self, value: Any) -> bool:
        return bool(self._test(value, self.value))
