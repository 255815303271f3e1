from google.protobuf import any_pb2 as _any_pb2
from gateway.pb.pgw.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FieldKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FIELD_KIND_UNSPECIFIED: _ClassVar[FieldKind]
    FIELD_KIND_STRING: _ClassVar[FieldKind]
    FIELD_KIND_INT: _ClassVar[FieldKind]
    FIELD_KIND_FLOAT: _ClassVar[FieldKind]
    FIELD_KIND_BOOL: _ClassVar[FieldKind]
    FIELD_KIND_DATE: _ClassVar[FieldKind]
    FIELD_KIND_MONTH: _ClassVar[FieldKind]
    FIELD_KIND_CODE: _ClassVar[FieldKind]
    FIELD_KIND_FLOAT_LIST: _ClassVar[FieldKind]
FIELD_KIND_UNSPECIFIED: FieldKind
FIELD_KIND_STRING: FieldKind
FIELD_KIND_INT: FieldKind
FIELD_KIND_FLOAT: FieldKind
FIELD_KIND_BOOL: FieldKind
FIELD_KIND_DATE: FieldKind
FIELD_KIND_MONTH: FieldKind
FIELD_KIND_CODE: FieldKind
FIELD_KIND_FLOAT_LIST: FieldKind

class DescribeRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class FieldInfo(_message.Message):
    __slots__ = ("name", "kind", "sensitivity", "description")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SENSITIVITY_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: FieldKind
    sensitivity: str
    description: str
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[_Union[FieldKind, str]] = ..., sensitivity: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class DescribeResponse(_message.Message):
    __slots__ = ("partner", "fields", "transforms")
    PARTNER_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    TRANSFORMS_FIELD_NUMBER: _ClassVar[int]
    partner: str
    fields: _containers.RepeatedCompositeFieldContainer[FieldInfo]
    transforms: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, partner: _Optional[str] = ..., fields: _Optional[_Iterable[_Union[FieldInfo, _Mapping]]] = ..., transforms: _Optional[_Iterable[str]] = ...) -> None: ...

class ReleaseSpec(_message.Message):
    __slots__ = ("request_id", "requester_org", "purpose", "agreement", "partner", "subjects", "fields", "issued_at_ms", "expires_at_ms", "operation", "operation_spec")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    REQUESTER_ORG_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    AGREEMENT_FIELD_NUMBER: _ClassVar[int]
    PARTNER_FIELD_NUMBER: _ClassVar[int]
    SUBJECTS_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_MS_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    OPERATION_SPEC_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    requester_org: str
    purpose: str
    agreement: _common_pb2.AgreementRef
    partner: str
    subjects: _containers.RepeatedScalarFieldContainer[str]
    fields: _containers.RepeatedCompositeFieldContainer[_common_pb2.FieldRelease]
    issued_at_ms: int
    expires_at_ms: int
    operation: str
    operation_spec: bytes
    def __init__(self, request_id: _Optional[str] = ..., requester_org: _Optional[str] = ..., purpose: _Optional[str] = ..., agreement: _Optional[_Union[_common_pb2.AgreementRef, _Mapping]] = ..., partner: _Optional[str] = ..., subjects: _Optional[_Iterable[str]] = ..., fields: _Optional[_Iterable[_Union[_common_pb2.FieldRelease, _Mapping]]] = ..., issued_at_ms: _Optional[int] = ..., expires_at_ms: _Optional[int] = ..., operation: _Optional[str] = ..., operation_spec: _Optional[bytes] = ...) -> None: ...

class SignedReleaseSpec(_message.Message):
    __slots__ = ("spec", "signature", "key_id")
    SPEC_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    spec: bytes
    signature: bytes
    key_id: str
    def __init__(self, spec: _Optional[bytes] = ..., signature: _Optional[bytes] = ..., key_id: _Optional[str] = ...) -> None: ...

class FetchRequest(_message.Message):
    __slots__ = ("signed_spec",)
    SIGNED_SPEC_FIELD_NUMBER: _ClassVar[int]
    signed_spec: SignedReleaseSpec
    def __init__(self, signed_spec: _Optional[_Union[SignedReleaseSpec, _Mapping]] = ...) -> None: ...

class Row(_message.Message):
    __slots__ = ("subject_index", "found", "values")
    SUBJECT_INDEX_FIELD_NUMBER: _ClassVar[int]
    FOUND_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    subject_index: int
    found: bool
    values: _containers.RepeatedCompositeFieldContainer[_common_pb2.FieldValue]
    def __init__(self, subject_index: _Optional[int] = ..., found: _Optional[bool] = ..., values: _Optional[_Iterable[_Union[_common_pb2.FieldValue, _Mapping]]] = ...) -> None: ...

class FetchResponse(_message.Message):
    __slots__ = ("request_id", "rows")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    rows: _containers.RepeatedCompositeFieldContainer[Row]
    def __init__(self, request_id: _Optional[str] = ..., rows: _Optional[_Iterable[_Union[Row, _Mapping]]] = ...) -> None: ...

class FetchBatchRequest(_message.Message):
    __slots__ = ("requests",)
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[FetchRequest]
    def __init__(self, requests: _Optional[_Iterable[_Union[FetchRequest, _Mapping]]] = ...) -> None: ...

class FetchError(_message.Message):
    __slots__ = ("code", "message", "details")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    details: _containers.RepeatedCompositeFieldContainer[_any_pb2.Any]
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ..., details: _Optional[_Iterable[_Union[_any_pb2.Any, _Mapping]]] = ...) -> None: ...

class FetchOutcome(_message.Message):
    __slots__ = ("answer", "error")
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    answer: FetchResponse
    error: FetchError
    def __init__(self, answer: _Optional[_Union[FetchResponse, _Mapping]] = ..., error: _Optional[_Union[FetchError, _Mapping]] = ...) -> None: ...

class FetchBatchResponse(_message.Message):
    __slots__ = ("outcomes",)
    OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    outcomes: _containers.RepeatedCompositeFieldContainer[FetchOutcome]
    def __init__(self, outcomes: _Optional[_Iterable[_Union[FetchOutcome, _Mapping]]] = ...) -> None: ...

class CosignRequest(_message.Message):
    __slots__ = ("checkpoint", "old_size", "consistency_proof")
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    OLD_SIZE_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_PROOF_FIELD_NUMBER: _ClassVar[int]
    checkpoint: str
    old_size: int
    consistency_proof: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, checkpoint: _Optional[str] = ..., old_size: _Optional[int] = ..., consistency_proof: _Optional[_Iterable[bytes]] = ...) -> None: ...

class CosignResponse(_message.Message):
    __slots__ = ("cosignature", "size")
    COSIGNATURE_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    cosignature: str
    size: int
    def __init__(self, cosignature: _Optional[str] = ..., size: _Optional[int] = ...) -> None: ...
