from gateway.pb.pgw.v1 import common_pb2 as _common_pb2
from gateway.pb.pgw.v1 import connector_pb2 as _connector_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JoinMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOIN_MODE_UNSPECIFIED: _ClassVar[JoinMode]
    JOIN_MODE_ECDH_PSI: _ClassVar[JoinMode]
    JOIN_MODE_KEYED_HASH: _ClassVar[JoinMode]

class JoinOutput(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOIN_OUTPUT_UNSPECIFIED: _ClassVar[JoinOutput]
    JOIN_OUTPUT_MEMBERSHIP: _ClassVar[JoinOutput]
    JOIN_OUTPUT_CARDINALITY: _ClassVar[JoinOutput]
    JOIN_OUTPUT_INTERSECTION_SUM: _ClassVar[JoinOutput]
JOIN_MODE_UNSPECIFIED: JoinMode
JOIN_MODE_ECDH_PSI: JoinMode
JOIN_MODE_KEYED_HASH: JoinMode
JOIN_OUTPUT_UNSPECIFIED: JoinOutput
JOIN_OUTPUT_MEMBERSHIP: JoinOutput
JOIN_OUTPUT_CARDINALITY: JoinOutput
JOIN_OUTPUT_INTERSECTION_SUM: JoinOutput

class PointChunk(_message.Message):
    __slots__ = ("offset", "packed")
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    PACKED_FIELD_NUMBER: _ClassVar[int]
    offset: int
    packed: bytes
    def __init__(self, offset: _Optional[int] = ..., packed: _Optional[bytes] = ...) -> None: ...

class BytesChunk(_message.Message):
    __slots__ = ("data", "last")
    DATA_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    last: bool
    def __init__(self, data: _Optional[bytes] = ..., last: _Optional[bool] = ...) -> None: ...

class JoinStart(_message.Message):
    __slots__ = ("purpose", "partner", "mode", "output", "requester_count", "keyed_public_key", "value_field", "he_public")
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    PARTNER_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    REQUESTER_COUNT_FIELD_NUMBER: _ClassVar[int]
    KEYED_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_FIELD_NUMBER: _ClassVar[int]
    HE_PUBLIC_FIELD_NUMBER: _ClassVar[int]
    purpose: str
    partner: str
    mode: JoinMode
    output: JoinOutput
    requester_count: int
    keyed_public_key: bytes
    value_field: str
    he_public: bytes
    def __init__(self, purpose: _Optional[str] = ..., partner: _Optional[str] = ..., mode: _Optional[_Union[JoinMode, str]] = ..., output: _Optional[_Union[JoinOutput, str]] = ..., requester_count: _Optional[int] = ..., keyed_public_key: _Optional[bytes] = ..., value_field: _Optional[str] = ..., he_public: _Optional[bytes] = ...) -> None: ...

class JoinRequest(_message.Message):
    __slots__ = ("start", "he_sum", "items", "reblinded", "end")
    START_FIELD_NUMBER: _ClassVar[int]
    HE_SUM_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    REBLINDED_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    start: JoinStart
    he_sum: BytesChunk
    items: PointChunk
    reblinded: PointChunk
    end: ItemsEnd
    def __init__(self, start: _Optional[_Union[JoinStart, _Mapping]] = ..., he_sum: _Optional[_Union[BytesChunk, _Mapping]] = ..., items: _Optional[_Union[PointChunk, _Mapping]] = ..., reblinded: _Optional[_Union[PointChunk, _Mapping]] = ..., end: _Optional[_Union[ItemsEnd, _Mapping]] = ...) -> None: ...

class ItemsEnd(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class JoinAccepted(_message.Message):
    __slots__ = ("job_id", "agreement", "partner_count", "keyed_public_key", "chunk_items")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    AGREEMENT_FIELD_NUMBER: _ClassVar[int]
    PARTNER_COUNT_FIELD_NUMBER: _ClassVar[int]
    KEYED_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    CHUNK_ITEMS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    agreement: _common_pb2.AgreementRef
    partner_count: int
    keyed_public_key: bytes
    chunk_items: int
    def __init__(self, job_id: _Optional[str] = ..., agreement: _Optional[_Union[_common_pb2.AgreementRef, _Mapping]] = ..., partner_count: _Optional[int] = ..., keyed_public_key: _Optional[bytes] = ..., chunk_items: _Optional[int] = ...) -> None: ...

class JoinProgress(_message.Message):
    __slots__ = ("stage", "done", "total")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    stage: str
    done: int
    total: int
    def __init__(self, stage: _Optional[str] = ..., done: _Optional[int] = ..., total: _Optional[int] = ...) -> None: ...

class JoinResult(_message.Message):
    __slots__ = ("match_count", "encrypted_sum", "membership", "receipt")
    MATCH_COUNT_FIELD_NUMBER: _ClassVar[int]
    ENCRYPTED_SUM_FIELD_NUMBER: _ClassVar[int]
    MEMBERSHIP_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    match_count: int
    encrypted_sum: bytes
    membership: bytes
    receipt: _common_pb2.AuditReceipt
    def __init__(self, match_count: _Optional[int] = ..., encrypted_sum: _Optional[bytes] = ..., membership: _Optional[bytes] = ..., receipt: _Optional[_Union[_common_pb2.AuditReceipt, _Mapping]] = ...) -> None: ...

class JoinResponse(_message.Message):
    __slots__ = ("accepted", "progress", "double_blinded", "partner_points", "membership", "result")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    DOUBLE_BLINDED_FIELD_NUMBER: _ClassVar[int]
    PARTNER_POINTS_FIELD_NUMBER: _ClassVar[int]
    MEMBERSHIP_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    accepted: JoinAccepted
    progress: JoinProgress
    double_blinded: PointChunk
    partner_points: PointChunk
    membership: PointChunk
    result: JoinResult
    def __init__(self, accepted: _Optional[_Union[JoinAccepted, _Mapping]] = ..., progress: _Optional[_Union[JoinProgress, _Mapping]] = ..., double_blinded: _Optional[_Union[PointChunk, _Mapping]] = ..., partner_points: _Optional[_Union[PointChunk, _Mapping]] = ..., membership: _Optional[_Union[PointChunk, _Mapping]] = ..., result: _Optional[_Union[JoinResult, _Mapping]] = ...) -> None: ...

class JoinParams(_message.Message):
    __slots__ = ("mode", "output", "requester_count", "keyed_public_key", "value_field", "he_public", "min_count")
    MODE_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    REQUESTER_COUNT_FIELD_NUMBER: _ClassVar[int]
    KEYED_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_FIELD_NUMBER: _ClassVar[int]
    HE_PUBLIC_FIELD_NUMBER: _ClassVar[int]
    MIN_COUNT_FIELD_NUMBER: _ClassVar[int]
    mode: JoinMode
    output: JoinOutput
    requester_count: int
    keyed_public_key: bytes
    value_field: str
    he_public: bytes
    min_count: int
    def __init__(self, mode: _Optional[_Union[JoinMode, str]] = ..., output: _Optional[_Union[JoinOutput, str]] = ..., requester_count: _Optional[int] = ..., keyed_public_key: _Optional[bytes] = ..., value_field: _Optional[str] = ..., he_public: _Optional[bytes] = ..., min_count: _Optional[int] = ...) -> None: ...

class PartnerJoinRequest(_message.Message):
    __slots__ = ("spec", "items", "end")
    SPEC_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    spec: _connector_pb2.SignedReleaseSpec
    items: PointChunk
    end: ItemsEnd
    def __init__(self, spec: _Optional[_Union[_connector_pb2.SignedReleaseSpec, _Mapping]] = ..., items: _Optional[_Union[PointChunk, _Mapping]] = ..., end: _Optional[_Union[ItemsEnd, _Mapping]] = ...) -> None: ...

class PartnerJoinResponse(_message.Message):
    __slots__ = ("accepted", "double_blinded", "partner_points", "ciphertext", "done")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    DOUBLE_BLINDED_FIELD_NUMBER: _ClassVar[int]
    PARTNER_POINTS_FIELD_NUMBER: _ClassVar[int]
    CIPHERTEXT_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    accepted: PartnerAccepted
    double_blinded: PointChunk
    partner_points: PointChunk
    ciphertext: BytesChunk
    done: PartnerDone
    def __init__(self, accepted: _Optional[_Union[PartnerAccepted, _Mapping]] = ..., double_blinded: _Optional[_Union[PointChunk, _Mapping]] = ..., partner_points: _Optional[_Union[PointChunk, _Mapping]] = ..., ciphertext: _Optional[_Union[BytesChunk, _Mapping]] = ..., done: _Optional[_Union[PartnerDone, _Mapping]] = ...) -> None: ...

class PartnerAccepted(_message.Message):
    __slots__ = ("partner_count", "keyed_public_key")
    PARTNER_COUNT_FIELD_NUMBER: _ClassVar[int]
    KEYED_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    partner_count: int
    keyed_public_key: bytes
    def __init__(self, partner_count: _Optional[int] = ..., keyed_public_key: _Optional[bytes] = ...) -> None: ...

class PartnerDone(_message.Message):
    __slots__ = ("double_blinded_count", "partner_point_count", "ciphertext_count")
    DOUBLE_BLINDED_COUNT_FIELD_NUMBER: _ClassVar[int]
    PARTNER_POINT_COUNT_FIELD_NUMBER: _ClassVar[int]
    CIPHERTEXT_COUNT_FIELD_NUMBER: _ClassVar[int]
    double_blinded_count: int
    partner_point_count: int
    ciphertext_count: int
    def __init__(self, double_blinded_count: _Optional[int] = ..., partner_point_count: _Optional[int] = ..., ciphertext_count: _Optional[int] = ...) -> None: ...
