"""Grants that never release a value in the clear: ``encrypted`` and ``aggregate``.

* ``encrypted`` (numbers): the field leaves the partner only as a CKKS ciphertext under the
  requester's public key, usable only in the named operations (``linear`` with an approved
  model named in ``models``, ``sum``, ``mean``).
* ``aggregate`` (numbers): only a cohort total leaves (``sum``, ``mean``, ``count``,
  ``intersection-sum``), over at least ``min_k`` people; cohorts are defined by partner-side
  attributes listed in ``cohort_by``, never by a list of people the requester supplies.

Both are *not releasable*: a plain ``Query`` naming such a field is refused at the gateway
and again at the connector, and calling the transform on a value raises.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from connectors.sdk._transform_base import NUMERIC, Transform, TransformParamError

ENCRYPTED_OPS = frozenset({"linear", "sum", "mean"})
AGGREGATE_OPS = frozenset({"sum", "mean", "count", "intersection-sum"})


def _names(param: str, value: Any, allowed: frozenset[str] | None) -> tuple[str, ...]:
    if (not isinstance(value, (list, tuple)) or not value
            or not all(isinstance(v, str) and v for v in value) or len(set(value)) != len(value)):
        raise TransformParamError(param, f"got {value!r}, want a non-empty list of names")
    if allowed is not None and not set(value) <= allowed:
        raise TransformParamError(param, f"got {sorted(set(value) - allowed)}, want names from "
                                  f"{sorted(allowed)}")
    return tuple(value)


class _Withheld(Transform):
    """Base of grants whose values are only ever used, never shown."""

    releasable = False
    accepts = NUMERIC

    def __call__(self, value: Any) -> Any:
        raise PermissionError(f"{self.name} grants release no plain value")

    def conforms(self, output: Any) -> bool:
        return False


class Encrypted(_Withheld):
    name = "encrypted"

    def __init__(self, field_type: Any, *, ops: Sequence[str] | None = None,
                 models: Sequence[str] | None = None) -> None:
        super().__init__(field_type)
        self.ops = _names("ops", ops, ENCRYPTED_OPS)
        if "linear" in self.ops and models is None:
            raise TransformParamError("models", "linear needs the approved models it may feed")
        self.models = _names("models", models, None) if models is not None else ()


class Aggregate(_Withheld):
    name = "aggregate"

    def __init__(self, field_type: Any, *, ops: Sequence[str] | None = None,
                 min_k: int | None = None, cohort_by: Sequence[str] | None = None) -> None:
        super().__init__(field_type)
        self.ops = _names("ops", ops, AGGREGATE_OPS)
        if not isinstance(min_k, int) or isinstance(min_k, bool) or min_k < 2:
            raise TransformParamError("min_k", f"got {min_k!r}, want an integer >= 2")
        self.min_k = min_k
        self.cohort_by = _names("cohort_by", cohort_by, None) if cohort_by is not None else ()
