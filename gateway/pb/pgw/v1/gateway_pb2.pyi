from gateway.pb.pgw.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Verdict(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VERDICT_UNSPECIFIED: _ClassVar[Verdict]
    VERDICT_ALLOW: _ClassVar[Verdict]
    VERDICT_DENY: _ClassVar[Verdict]
VERDICT_UNSPECIFIED: Verdict
VERDICT_ALLOW: Verdict
VERDICT_DENY: Verdict

class QueryRequest(_message.Message):
    __slots__ = ("purpose", "subjects", "selections")
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    SUBJECTS_FIELD_NUMBER: _ClassVar[int]
    SELECTIONS_FIELD_NUMBER: _ClassVar[int]
    purpose: str
    subjects: _containers.RepeatedScalarFieldContainer[str]
    selections: _containers.RepeatedCompositeFieldContainer[_common_pb2.Selection]
    def __init__(self, purpose: _Optional[str] = ..., subjects: _Optional[_Iterable[str]] = ..., selections: _Optional[_Iterable[_Union[_common_pb2.Selection, _Mapping]]] = ...) -> None: ...

class SubjectResult(_message.Message):
    __slots__ = ("subject_index", "values", "not_found")
    SUBJECT_INDEX_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    NOT_FOUND_FIELD_NUMBER: _ClassVar[int]
    subject_index: int
    values: _containers.RepeatedCompositeFieldContainer[_common_pb2.FieldValue]
    not_found: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, subject_index: _Optional[int] = ..., values: _Optional[_Iterable[_Union[_common_pb2.FieldValue, _Mapping]]] = ..., not_found: _Optional[_Iterable[str]] = ...) -> None: ...

class QueryResponse(_message.Message):
    __slots__ = ("request_id", "results", "agreements", "receipt")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    AGREEMENTS_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    results: _containers.RepeatedCompositeFieldContainer[SubjectResult]
    agreements: _containers.RepeatedCompositeFieldContainer[_common_pb2.AgreementRef]
    receipt: _common_pb2.AuditReceipt
    def __init__(self, request_id: _Optional[str] = ..., results: _Optional[_Iterable[_Union[SubjectResult, _Mapping]]] = ..., agreements: _Optional[_Iterable[_Union[_common_pb2.AgreementRef, _Mapping]]] = ..., receipt: _Optional[_Union[_common_pb2.AuditReceipt, _Mapping]] = ...) -> None: ...

class ExplainRequest(_message.Message):
    __slots__ = ("purpose", "subject_count", "selections")
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_COUNT_FIELD_NUMBER: _ClassVar[int]
    SELECTIONS_FIELD_NUMBER: _ClassVar[int]
    purpose: str
    subject_count: int
    selections: _containers.RepeatedCompositeFieldContainer[_common_pb2.Selection]
    def __init__(self, purpose: _Optional[str] = ..., subject_count: _Optional[int] = ..., selections: _Optional[_Iterable[_Union[_common_pb2.Selection, _Mapping]]] = ...) -> None: ...

class FieldDecision(_message.Message):
    __slots__ = ("partner", "field", "verdict", "transform", "reason")
    PARTNER_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    TRANSFORM_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    partner: str
    field: str
    verdict: Verdict
    transform: str
    reason: str
    def __init__(self, partner: _Optional[str] = ..., field: _Optional[str] = ..., verdict: _Optional[_Union[Verdict, str]] = ..., transform: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ExplainResponse(_message.Message):
    __slots__ = ("request_id", "verdict", "reason", "fields", "agreements")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    AGREEMENTS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    verdict: Verdict
    reason: str
    fields: _containers.RepeatedCompositeFieldContainer[FieldDecision]
    agreements: _containers.RepeatedCompositeFieldContainer[_common_pb2.AgreementRef]
    def __init__(self, request_id: _Optional[str] = ..., verdict: _Optional[_Union[Verdict, str]] = ..., reason: _Optional[str] = ..., fields: _Optional[_Iterable[_Union[FieldDecision, _Mapping]]] = ..., agreements: _Optional[_Iterable[_Union[_common_pb2.AgreementRef, _Mapping]]] = ...) -> None: ...
