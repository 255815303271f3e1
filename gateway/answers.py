"""Check that a connector's answer is exactly what its signed spec allowed.

A compromised or buggy connector must not be able to widen a release through the gateway:
every row must belong to a requested subject (once), carry exactly the spec's fields under the
spec's transforms, and each value must have the shape its transform promises (a predicate
gives a bool, a mask a string, a suppressed field nothing).
"""

from __future__ import annotations

import json
from functools import lru_cache

from connectors.sdk._schema import FieldType
from connectors.sdk._transform_base import Transform
from connectors.sdk._transforms import build_transform
from connectors.sdk._values import CASE, case_of, from_value
from gateway.errors import UpstreamViolation
from gateway.pb.pgw.v1 import connector_pb2

_DUMMY_KEY = bytes(32)


@lru_cache(maxsize=1024)
def _transform(transform: str, params_json: str, field_type: FieldType) -> Transform:
    """The transform a spec names, rebuilt here only to check output shapes (the key is a
    dummy: the gateway never computes pseudonyms itself)."""
    return build_transform(transform, json.loads(params_json or "{}"), field_type,
                           pseudonym_key=_DUMMY_KEY)


def check_answer(spec: connector_pb2.ReleaseSpec, answer: connector_pb2.FetchResponse,
                 field_types: dict[str, FieldType]) -> None:
    """Raise :class:`UpstreamViolation` unless ``answer`` matches ``spec`` exactly."""
    partner = spec.partner
    want = {f.field: (f.transform, f.params_json) for f in spec.fields}
    if answer.request_id != spec.request_id:
        raise _violation(partner, "answer for another request id")
    seen: set[int] = set()
    for row in answer.rows:
        if row.subject_index >= len(spec.subjects) or row.subject_index in seen:
            raise _violation(partner, "row for a subject not requested or repeated")
        seen.add(row.subject_index)
        if not row.found:
            if row.values:
                raise _violation(partner, "values for a subject reported not found")
            continue
        got = [v.field for v in row.values]
        if sorted(got) != sorted(want) or len(set(got)) != len(got):
            extra = sorted(set(got) - set(want))
            raise _violation(partner, f"fields differ from the spec (extra: {extra})")
        for value in row.values:
            transform, params = want[value.field]
            if value.partner != partner or value.transform != transform:
                raise _violation(partner, f"{value.field}: transform or partner differs")
            fn = _transform(transform, params, field_types[value.field])
            case = case_of(value.value) if value.HasField("value") else None
            if case is not None and case != CASE[fn.output_type]:
                raise _violation(partner, f"{value.field}: got a {case}, "
                                 f"want a {CASE[fn.output_type]}")
            if not fn.conforms(from_value(value.value) if case else None):
                raise _violation(partner, f"{value.field}: value is not shaped like the "
                                 f"output of {transform}")
    if len(seen) != len(spec.subjects):
        raise _violation(partner, "rows missing for some subjects")


def _violation(partner: str, what: str) -> UpstreamViolation:
    return UpstreamViolation(f"partner {partner} answered outside its spec",
                             reason=f"{partner}: {what}")
