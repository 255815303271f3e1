"""The transform contract: a small class that validates in ``__init__`` and maps in ``__call__``.

``None`` (no value) always maps to ``None``. A value of the wrong runtime type raises
``TypeError`` and a malformed one ``ValueError``: the connector fails closed rather than
release something it did not mean to. Parameter problems raise :class:`TransformParamError`,
a ``ValueError`` that names the parameter, so agreement lint can point at it.
"""

from __future__ import annotations

import math
import re
from datetime import date
from typing import Any, ClassVar

from connectors.sdk._schema import FieldType as T

TEXT = frozenset({T.STRING, T.CODE})
NUMERIC = frozenset({T.INT, T.FLOAT})
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_MONTH = re.compile(r"\d{4}-\d{2}")


class TransformParamError(ValueError):
    """A transform parameter is missing, unknown or out of range; ``param`` names it."""

    def __init__(self, param: str, reason: str) -> None:
        super().__init__(f"{param}: {reason}")
        self.param = param
        self.reason = reason


def is_number(x: object) -> bool:
    """A finite int or float, and not a bool (``True`` is an ``int`` in Python)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def fmt_number(x: float) -> str:
    """Print integral numbers without a decimal point, others exactly (``repr``)."""
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def check_value(value: Any, field_type: T) -> Any:
    """Return ``value`` normalised for ``field_type`` or raise ``TypeError``/``ValueError``.

    Dates and months come out as ``"YYYY-MM-DD"`` / ``"YYYY-MM"`` strings (``date``
    objects are accepted and converted).
    """
    if field_type in TEXT and isinstance(value, str):
        return value
    if field_type is T.INT and is_int(value):
        return value
    if field_type is T.FLOAT and is_number(value):
        return value
    if field_type is T.BOOL and isinstance(value, bool):
        return value
    if field_type in (T.DATE, T.MONTH):
        text = value.isoformat() if isinstance(value, date) else value
        if field_type is T.MONTH and isinstance(value, date):
            text = text[:7]
        pattern = _DAY if field_type is T.DATE else _MONTH
        if isinstance(text, str) and pattern.fullmatch(text):
            return text
        raise ValueError(f"got a malformed {field_type.value} value, want "
                         f"{'YYYY-MM-DD' if field_type is T.DATE else 'YYYY-MM'}")
    if (field_type is T.FLOAT_LIST and isinstance(value, (list, tuple))
            and all(is_number(v) for v in value)):
        return value
    raise TypeError(f"got {type(value).__name__}, want a {field_type.value} value")


class Transform:
    """Base class: validate in ``__init__``, map in ``__call__`` (``None`` passes through).

    Subclasses set ``name``, optionally ``accepts`` (the field types they apply to) and
    ``output_type`` (defaults to the input field type), and override ``_apply``.
    """

    name: ClassVar[str]
    #: False for grants that never release a plain value (encrypted, aggregate).
    releasable: ClassVar[bool] = True
    #: The field types this transform accepts; ``None`` means any.
    accepts: ClassVar[frozenset[T] | None] = None
    output_type: T

    def __init__(self, field_type: T) -> None:
        if self.accepts is not None and field_type not in self.accepts:
            allowed = ", ".join(sorted(t.value for t in self.accepts))
            raise TransformParamError(
                "transform", f"{self.name} does not apply to {field_type.value} fields "
                f"(want one of: {allowed})")
        self.field_type = field_type
        self.output_type = field_type

    def __call__(self, value: Any) -> Any:
        if value is None:
            return None
        return self._apply(check_value(value, self.field_type))

    def _apply(self, value: Any) -> Any:
        return value

    def conforms(self, output: Any) -> bool:
        """Whether ``output`` has the shape this transform produces (the gateway's check
        that a connector did not send a raw value dressed up as a transformed one)."""
        if output is None:
            return True
        try:
            check_value(output, self.output_type)
        except (TypeError, ValueError):
            return False
        return True

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.field_type.value} -> {self.output_type.value}>"
