"""Python values <-> ``pgw.v1.Value`` messages, keyed by :class:`FieldType`.

Both sides use the same table: the connector to encode what a transform produced, the gateway
to check that each value has the shape its transform promises.
"""

from __future__ import annotations

from typing import Any

from connectors.sdk._schema import FieldType
from gateway.pb.pgw.v1 import common_pb2

#: Which ``Value`` oneof case carries each field type.
CASE = {
    FieldType.STRING: "string_value",
    FieldType.DATE: "string_value",
    FieldType.MONTH: "string_value",
    FieldType.CODE: "string_value",
    FieldType.INT: "int_value",
    FieldType.FLOAT: "double_value",
    FieldType.BOOL: "bool_value",
    FieldType.FLOAT_LIST: "double_list",
}


def to_value(value: Any, kind: FieldType) -> common_pb2.Value | None:
    """Encode ``value`` as ``kind``; ``None`` stays ``None`` (the field is left unset)."""
    if value is None:
        return None
    case = CASE[kind]
    if case == "double_list":
        return common_pb2.Value(double_list=common_pb2.DoubleList(values=[float(v) for v in value]))
    if case == "string_value":
        return common_pb2.Value(string_value=str(value))
    if case == "int_value":
        return common_pb2.Value(int_value=int(value))
    if case == "double_value":
        return common_pb2.Value(double_value=float(value))
    return common_pb2.Value(bool_value=bool(value))


def from_value(value: common_pb2.Value) -> Any:
    """Decode a ``Value`` back to a Python value (``None`` when unset)."""
    case = value.WhichOneof("kind")
    if case is None:
        return None
    if case == "double_list":
        return list(value.double_list.values)
    return getattr(value, case)


def case_of(value: common_pb2.Value) -> str | None:
    return value.WhichOneof("kind")
