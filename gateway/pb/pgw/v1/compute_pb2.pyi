from gateway.pb.pgw.v1 import common_pb2 as _common_pb2
from gateway.pb.pgw.v1 import connector_pb2 as _connector_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LinearOp(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: str
    def __init__(self, model: _Optional[str] = ...) -> None: ...

class AggregateOp(_message.Message):
    __slots__ = ("partner", "field", "op", "cohort_attribute", "cohort_value")
    PARTNER_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    OP_FIELD_NUMBER: _ClassVar[int]
    COHORT_ATTRIBUTE_FIELD_NUMBER: _ClassVar[int]
    COHORT_VALUE_FIELD_NUMBER: _ClassVar[int]
    partner: str
    field: str
    op: str
    cohort_attribute: str
    cohort_value: str
    def __init__(self, partner: _Optional[str] = ..., field: _Optional[str] = ..., op: _Optional[str] = ..., cohort_attribute: _Optional[str] = ..., cohort_value: _Optional[str] = ...) -> None: ...

class ComputeHeader(_message.Message):
    __slots__ = ("purpose", "linear", "aggregate", "public_context", "subject_count")
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    LINEAR_FIELD_NUMBER: _ClassVar[int]
    AGGREGATE_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_COUNT_FIELD_NUMBER: _ClassVar[int]
    purpose: str
    linear: LinearOp
    aggregate: AggregateOp
    public_context: bytes
    subject_count: int
    def __init__(self, purpose: _Optional[str] = ..., linear: _Optional[_Union[LinearOp, _Mapping]] = ..., aggregate: _Optional[_Union[AggregateOp, _Mapping]] = ..., public_context: _Optional[bytes] = ..., subject_count: _Optional[int] = ...) -> None: ...

class SubjectChunk(_message.Message):
    __slots__ = ("ids",)
    IDS_FIELD_NUMBER: _ClassVar[int]
    ids: bytes
    def __init__(self, ids: _Optional[bytes] = ...) -> None: ...

class ComputeRequest(_message.Message):
    __slots__ = ("header", "subjects")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    SUBJECTS_FIELD_NUMBER: _ClassVar[int]
    header: ComputeHeader
    subjects: SubjectChunk
    def __init__(self, header: _Optional[_Union[ComputeHeader, _Mapping]] = ..., subjects: _Optional[_Union[SubjectChunk, _Mapping]] = ...) -> None: ...

class Presence(_message.Message):
    __slots__ = ("partner", "found")
    PARTNER_FIELD_NUMBER: _ClassVar[int]
    FOUND_FIELD_NUMBER: _ClassVar[int]
    partner: str
    found: bytes
    def __init__(self, partner: _Optional[str] = ..., found: _Optional[bytes] = ...) -> None: ...

class ComputeSummary(_message.Message):
    __slots__ = ("request_id", "operation", "model", "model_version", "count", "chunk_slots", "ciphertexts", "presence", "cohort_count", "agreements", "receipt")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    CHUNK_SLOTS_FIELD_NUMBER: _ClassVar[int]
    CIPHERTEXTS_FIELD_NUMBER: _ClassVar[int]
    PRESENCE_FIELD_NUMBER: _ClassVar[int]
    COHORT_COUNT_FIELD_NUMBER: _ClassVar[int]
    AGREEMENTS_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    operation: str
    model: str
    model_version: int
    count: int
    chunk_slots: int
    ciphertexts: int
    presence: _containers.RepeatedCompositeFieldContainer[Presence]
    cohort_count: int
    agreements: _containers.RepeatedCompositeFieldContainer[_common_pb2.AgreementRef]
    receipt: _common_pb2.AuditReceipt
    def __init__(self, request_id: _Optional[str] = ..., operation: _Optional[str] = ..., model: _Optional[str] = ..., model_version: _Optional[int] = ..., count: _Optional[int] = ..., chunk_slots: _Optional[int] = ..., ciphertexts: _Optional[int] = ..., presence: _Optional[_Iterable[_Union[Presence, _Mapping]]] = ..., cohort_count: _Optional[int] = ..., agreements: _Optional[_Iterable[_Union[_common_pb2.AgreementRef, _Mapping]]] = ..., receipt: _Optional[_Union[_common_pb2.AuditReceipt, _Mapping]] = ...) -> None: ...

class CiphertextChunk(_message.Message):
    __slots__ = ("index", "ciphertext")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    CIPHERTEXT_FIELD_NUMBER: _ClassVar[int]
    index: int
    ciphertext: bytes
    def __init__(self, index: _Optional[int] = ..., ciphertext: _Optional[bytes] = ...) -> None: ...

class ComputeResponse(_message.Message):
    __slots__ = ("summary", "chunk")
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    summary: ComputeSummary
    chunk: CiphertextChunk
    def __init__(self, summary: _Optional[_Union[ComputeSummary, _Mapping]] = ..., chunk: _Optional[_Union[CiphertextChunk, _Mapping]] = ...) -> None: ...

class EncryptSpec(_message.Message):
    __slots__ = ("field", "op", "model", "context_sha256", "subjects_sha256", "subject_count", "chunk_slots")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    OP_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_SHA256_FIELD_NUMBER: _ClassVar[int]
    SUBJECTS_SHA256_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_COUNT_FIELD_NUMBER: _ClassVar[int]
    CHUNK_SLOTS_FIELD_NUMBER: _ClassVar[int]
    field: str
    op: str
    model: str
    context_sha256: bytes
    subjects_sha256: bytes
    subject_count: int
    chunk_slots: int
    def __init__(self, field: _Optional[str] = ..., op: _Optional[str] = ..., model: _Optional[str] = ..., context_sha256: _Optional[bytes] = ..., subjects_sha256: _Optional[bytes] = ..., subject_count: _Optional[int] = ..., chunk_slots: _Optional[int] = ...) -> None: ...

class EncryptStart(_message.Message):
    __slots__ = ("signed_spec", "public_context")
    SIGNED_SPEC_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    signed_spec: _connector_pb2.SignedReleaseSpec
    public_context: bytes
    def __init__(self, signed_spec: _Optional[_Union[_connector_pb2.SignedReleaseSpec, _Mapping]] = ..., public_context: _Optional[bytes] = ...) -> None: ...

class EncryptRequest(_message.Message):
    __slots__ = ("start", "subjects")
    START_FIELD_NUMBER: _ClassVar[int]
    SUBJECTS_FIELD_NUMBER: _ClassVar[int]
    start: EncryptStart
    subjects: SubjectChunk
    def __init__(self, start: _Optional[_Union[EncryptStart, _Mapping]] = ..., subjects: _Optional[_Union[SubjectChunk, _Mapping]] = ...) -> None: ...

class EncryptSummary(_message.Message):
    __slots__ = ("request_id", "count", "ciphertexts", "found")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    CIPHERTEXTS_FIELD_NUMBER: _ClassVar[int]
    FOUND_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    count: int
    ciphertexts: int
    found: bytes
    def __init__(self, request_id: _Optional[str] = ..., count: _Optional[int] = ..., ciphertexts: _Optional[int] = ..., found: _Optional[bytes] = ...) -> None: ...

class EncryptResponse(_message.Message):
    __slots__ = ("summary", "chunk")
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    summary: EncryptSummary
    chunk: CiphertextChunk
    def __init__(self, summary: _Optional[_Union[EncryptSummary, _Mapping]] = ..., chunk: _Optional[_Union[CiphertextChunk, _Mapping]] = ...) -> None: ...

class AggregateSpec(_message.Message):
    __slots__ = ("field", "op", "cohort_attribute", "cohort_value", "context_sha256")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    OP_FIELD_NUMBER: _ClassVar[int]
    COHORT_ATTRIBUTE_FIELD_NUMBER: _ClassVar[int]
    COHORT_VALUE_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_SHA256_FIELD_NUMBER: _ClassVar[int]
    field: str
    op: str
    cohort_attribute: str
    cohort_value: str
    context_sha256: bytes
    def __init__(self, field: _Optional[str] = ..., op: _Optional[str] = ..., cohort_attribute: _Optional[str] = ..., cohort_value: _Optional[str] = ..., context_sha256: _Optional[bytes] = ...) -> None: ...

class AggregateRequest(_message.Message):
    __slots__ = ("signed_spec", "public_context")
    SIGNED_SPEC_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    signed_spec: _connector_pb2.SignedReleaseSpec
    public_context: bytes
    def __init__(self, signed_spec: _Optional[_Union[_connector_pb2.SignedReleaseSpec, _Mapping]] = ..., public_context: _Optional[bytes] = ...) -> None: ...

class AggregateResponse(_message.Message):
    __slots__ = ("request_id", "count", "ciphertext")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    CIPHERTEXT_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    count: int
    ciphertext: bytes
    def __init__(self, request_id: _Optional[str] = ..., count: _Optional[int] = ..., ciphertext: _Optional[bytes] = ...) -> None: ...
