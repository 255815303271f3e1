"""Privacy transforms, applied at the source before anything leaves the partner.

A pipeline of small classes (see :mod:`connectors.sdk._transform_base` for the contract);
:func:`build_transform` makes one from an agreement's ``{transform: name, ...params}`` and
:func:`transform_row` is the pipeline: a plain loop over the released fields.

Output formats (stable, part of the wire contract):

* ``plain``: the value as it is. ``suppress``: always ``None``.
* ``mask``: same length as the input; at most ``keep_first + keep_last`` characters shown, and
  a value no longer than that is masked entirely, so the whole value is never revealed.
* ``generalize``: see :class:`~connectors.sdk._generalize.Generalize` (``"[6000, 8000)"``,
  ``"<3000"``, ``">=20000"``, ``"2024"``, ``"2024-05"``, ``"3204"``).
* ``pseudonym``: lowercase hex HMAC-SHA256 of the canonical string (``str(int)``, ISO dates,
  strings as they are) under a per-agreement key from :func:`derive_pseudonym_key`.
* ``predicate``: ``True``/``False`` only.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any

from connectors.sdk._generalize import Generalize, Predicate
from connectors.sdk._privacy_transforms import Aggregate, Encrypted
from connectors.sdk._schema import FieldType as T
from connectors.sdk._transform_base import TEXT, Transform, TransformParamError, is_int

_PSEUDONYM_SALT = b"pgw/pseudonym/v1"


_HEX64 = re.compile(r"[0-9a-f]{64}")


class Plain(Transform):
    """Release the value as it is (projection only)."""

    name = "plain"


class Suppress(Transform):
    """Never release the value: always ``None``, whatever the input."""

    name = "suppress"

    def __call__(self, value: Any) -> Any:
        return None

    def conforms(self, output: Any) -> bool:
        return output is None


class Mask(Transform):
    """Keep the first/last characters, replace the rest with ``char``."""

    name = "mask"
    accepts = TEXT

    def __init__(self, field_type: T, *, keep_first: int = 0, keep_last: int = 0,
                 char: str = "*") -> None:
        super().__init__(field_type)
        for param, n in (("keep_first", keep_first), ("keep_last", keep_last)):
            if not is_int(n) or n < 0:
                raise TransformParamError(param, f"got {n!r}, want an integer >= 0")
        if not isinstance(char, str) or len(char) != 1:
            raise TransformParamError("char", f"got {char!r}, want a single character")
        self.keep_first, self.keep_last, self.char = keep_first, keep_last, char
        self.output_type = T.STRING

    def _apply(self, value: str) -> str:
        n = len(value)
        if self.keep_first + self.keep_last >= n:
            return self.char * n
        hidden = n - self.keep_first - self.keep_last
        return value[:self.keep_first] + self.char * hidden + value[n - self.keep_last:]

    def conforms(self, output: Any) -> bool:
        if output is None:
            return True
        if not isinstance(output, str):
            return False
        n = len(output)
        if self.keep_first + self.keep_last >= n:
            return output == self.char * n
        return output[self.keep_first:n - self.keep_last] == self.char * (
            n - self.keep_first - self.keep_last)


class Pseudonym(Transform):
    """Keyed HMAC-SHA256 of the value: stable within one agreement, unlinkable across."""

    name = "pseudonym"
    accepts = TEXT | {T.INT, T.DATE, T.MONTH}

    def __init__(self, field_type: T, *, key: bytes | None) -> None:
        super().__init__(field_type)
        if not isinstance(key, bytes) or len(key) < 16:
            raise TransformParamError(
                "pseudonym_key", "pseudonym needs a key of at least 16 bytes at build time "
                "(use derive_pseudonym_key)")
        self._key = key
        self.output_type = T.STRING

    def _apply(self, value: Any) -> str:
        return hmac.new(self._key, str(value).encode("utf-8"), hashlib.sha256).hexdigest()

    def conforms(self, output: Any) -> bool:
        return output is None or (isinstance(output, str) and _HEX64.fullmatch(output) is not None)


def derive_pseudonym_key(connector_secret: bytes, agreement_id: str) -> bytes:
    """The 32-byte pseudonym key for one agreement: HKDF-SHA256 (RFC 5869).

    Salt is a fixed label, info is the agreement id: each agreement (hence each requester)
    gets its own key, so pseudonyms cannot be joined across agreements. All versions of one
    agreement id share the key, so pseudonyms stay stable when an agreement is amended.
    """
    if not isinstance(connector_secret, bytes) or len(connector_secret) < 16:
        raise ValueError("connector_secret: want at least 16 bytes")
    if not isinstance(agreement_id, str) or not agreement_id:
        raise ValueError("agreement_id: want a non-empty string")
    prk = hmac.new(_PSEUDONYM_SALT, connector_secret, hashlib.sha256).digest()
    return hmac.new(prk, agreement_id.encode("utf-8") + b"\x01", hashlib.sha256).digest()


#: Every transform by name.
TRANSFORMS: Mapping[str, type[Transform]] = {
    cls.name: cls for cls in (Aggregate, Encrypted, Generalize, Mask, Plain, Predicate,
                              Pseudonym, Suppress)}
_PARAMS: Mapping[str, frozenset[str]] = {
    "plain": frozenset(), "suppress": frozenset(), "pseudonym": frozenset(),
    "mask": frozenset({"keep_first", "keep_last", "char"}),
    "generalize": frozenset({"band", "edges", "to", "prefix"}),
    "predicate": frozenset({"op", "value"}),
    "encrypted": frozenset({"ops", "models"}),
    "aggregate": frozenset({"ops", "min_k", "cohort_by"}),
}


def build_transform(name: str, params: Mapping[str, Any], field_type: T, *,
                    pseudonym_key: bytes | None = None) -> Transform:
    """Build transform ``name`` for a field of ``field_type`` with ``params``.

    Raises :class:`TransformParamError` (a ``ValueError``) naming ``transform`` for an
    unknown name or a type the transform does not apply to, or naming the parameter.
    ``pseudonym_key`` is used by ``pseudonym`` only and ignored by the others.
    """
    cls = TRANSFORMS.get(name)
    if cls is None:
        raise TransformParamError(
            "transform", f"got {name!r}, want one of: {', '.join(sorted(TRANSFORMS))}")
    for param in sorted(set(params) - _PARAMS[name]):
        allowed = ", ".join(sorted(_PARAMS[name])) or "none"
        raise TransformParamError(param, f"unknown parameter for {name} (allowed: {allowed})")
    if cls is Pseudonym:
        return Pseudonym(field_type, key=pseudonym_key)
    return cls(field_type, **params)


def transform_row(transforms: Mapping[str, Transform], row: Mapping[str, Any]) -> dict[str, Any]:
    """The pipeline: exactly the fields in ``transforms``, each through its transform."""
    return {field: transform(row.get(field)) for field, transform in transforms.items()}
