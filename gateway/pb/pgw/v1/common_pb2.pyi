from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Value(_message.Message):
    __slots__ = ("string_value", "int_value", "double_value", "bool_value", "double_list")
    STRING_VALUE_FIELD_NUMBER: _ClassVar[int]
    INT_VALUE_FIELD_NUMBER: _ClassVar[int]
    DOUBLE_VALUE_FIELD_NUMBER: _ClassVar[int]
    BOOL_VALUE_FIELD_NUMBER: _ClassVar[int]
    DOUBLE_LIST_FIELD_NUMBER: _ClassVar[int]
    string_value: str
    int_value: int
    double_value: float
    bool_value: bool
    double_list: DoubleList
    def __init__(self, string_value: _Optional[str] = ..., int_value: _Optional[int] = ..., double_value: _Optional[float] = ..., bool_value: _Optional[bool] = ..., double_list: _Optional[_Union[DoubleList, _Mapping]] = ...) -> None: ...

class DoubleList(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, values: _Optional[_Iterable[float]] = ...) -> None: ...

class FieldRef(_message.Message):
    __slots__ = ("partner", "field")
    PARTNER_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    partner: str
    field: str
    def __init__(self, partner: _Optional[str] = ..., field: _Optional[str] = ...) -> None: ...

class Selection(_message.Message):
    __slots__ = ("partner", "fields")
    PARTNER_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    partner: str
    fields: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, partner: _Optional[str] = ..., fields: _Optional[_Iterable[str]] = ...) -> None: ...

class AgreementRef(_message.Message):
    __slots__ = ("id", "version", "content_hash")
    ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CONTENT_HASH_FIELD_NUMBER: _ClassVar[int]
    id: str
    version: int
    content_hash: str
    def __init__(self, id: _Optional[str] = ..., version: _Optional[int] = ..., content_hash: _Optional[str] = ...) -> None: ...

class FieldRelease(_message.Message):
    __slots__ = ("field", "transform", "params_json")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    TRANSFORM_FIELD_NUMBER: _ClassVar[int]
    PARAMS_JSON_FIELD_NUMBER: _ClassVar[int]
    field: str
    transform: str
    params_json: str
    def __init__(self, field: _Optional[str] = ..., transform: _Optional[str] = ..., params_json: _Optional[str] = ...) -> None: ...

class FieldValue(_message.Message):
    __slots__ = ("partner", "field", "transform", "value")
    PARTNER_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    TRANSFORM_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    partner: str
    field: str
    transform: str
    value: Value
    def __init__(self, partner: _Optional[str] = ..., field: _Optional[str] = ..., transform: _Optional[str] = ..., value: _Optional[_Union[Value, _Mapping]] = ...) -> None: ...

class AuditReceipt(_message.Message):
    __slots__ = ("leaf_index", "tree_size", "entry", "inclusion_proof", "checkpoint", "hash")
    LEAF_INDEX_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    INCLUSION_PROOF_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    leaf_index: int
    tree_size: int
    entry: bytes
    inclusion_proof: _containers.RepeatedScalarFieldContainer[bytes]
    checkpoint: str
    hash: str
    def __init__(self, leaf_index: _Optional[int] = ..., tree_size: _Optional[int] = ..., entry: _Optional[bytes] = ..., inclusion_proof: _Optional[_Iterable[bytes]] = ..., checkpoint: _Optional[str] = ..., hash: _Optional[str] = ...) -> None: ...
