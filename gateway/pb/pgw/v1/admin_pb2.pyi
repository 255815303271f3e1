from gateway.pb.pgw.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AgreementState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AGREEMENT_STATE_UNSPECIFIED: _ClassVar[AgreementState]
    AGREEMENT_STATE_PROPOSED: _ClassVar[AgreementState]
    AGREEMENT_STATE_ACTIVE: _ClassVar[AgreementState]
    AGREEMENT_STATE_REVOKED: _ClassVar[AgreementState]
    AGREEMENT_STATE_SUPERSEDED: _ClassVar[AgreementState]
AGREEMENT_STATE_UNSPECIFIED: AgreementState
AGREEMENT_STATE_PROPOSED: AgreementState
AGREEMENT_STATE_ACTIVE: AgreementState
AGREEMENT_STATE_REVOKED: AgreementState
AGREEMENT_STATE_SUPERSEDED: AgreementState

class AgreementRecord(_message.Message):
    __slots__ = ("proposal_id", "agreement", "state", "origin", "proposer", "approvers", "approvals_required", "requester_org", "purpose", "partner", "proposed_at", "changed_at")
    PROPOSAL_ID_FIELD_NUMBER: _ClassVar[int]
    AGREEMENT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    PROPOSER_FIELD_NUMBER: _ClassVar[int]
    APPROVERS_FIELD_NUMBER: _ClassVar[int]
    APPROVALS_REQUIRED_FIELD_NUMBER: _ClassVar[int]
    REQUESTER_ORG_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    PARTNER_FIELD_NUMBER: _ClassVar[int]
    PROPOSED_AT_FIELD_NUMBER: _ClassVar[int]
    CHANGED_AT_FIELD_NUMBER: _ClassVar[int]
    proposal_id: str
    agreement: _common_pb2.AgreementRef
    state: AgreementState
    origin: str
    proposer: str
    approvers: _containers.RepeatedScalarFieldContainer[str]
    approvals_required: int
    requester_org: str
    purpose: str
    partner: str
    proposed_at: str
    changed_at: str
    def __init__(self, proposal_id: _Optional[str] = ..., agreement: _Optional[_Union[_common_pb2.AgreementRef, _Mapping]] = ..., state: _Optional[_Union[AgreementState, str]] = ..., origin: _Optional[str] = ..., proposer: _Optional[str] = ..., approvers: _Optional[_Iterable[str]] = ..., approvals_required: _Optional[int] = ..., requester_org: _Optional[str] = ..., purpose: _Optional[str] = ..., partner: _Optional[str] = ..., proposed_at: _Optional[str] = ..., changed_at: _Optional[str] = ...) -> None: ...

class ProposeAgreementRequest(_message.Message):
    __slots__ = ("agreement_yaml",)
    AGREEMENT_YAML_FIELD_NUMBER: _ClassVar[int]
    agreement_yaml: str
    def __init__(self, agreement_yaml: _Optional[str] = ...) -> None: ...

class ProposeAgreementResponse(_message.Message):
    __slots__ = ("record",)
    RECORD_FIELD_NUMBER: _ClassVar[int]
    record: AgreementRecord
    def __init__(self, record: _Optional[_Union[AgreementRecord, _Mapping]] = ...) -> None: ...

class ApproveAgreementRequest(_message.Message):
    __slots__ = ("proposal_id", "content_hash")
    PROPOSAL_ID_FIELD_NUMBER: _ClassVar[int]
    CONTENT_HASH_FIELD_NUMBER: _ClassVar[int]
    proposal_id: str
    content_hash: str
    def __init__(self, proposal_id: _Optional[str] = ..., content_hash: _Optional[str] = ...) -> None: ...

class ApproveAgreementResponse(_message.Message):
    __slots__ = ("record",)
    RECORD_FIELD_NUMBER: _ClassVar[int]
    record: AgreementRecord
    def __init__(self, record: _Optional[_Union[AgreementRecord, _Mapping]] = ...) -> None: ...

class RevokeAgreementRequest(_message.Message):
    __slots__ = ("agreement_id", "reason")
    AGREEMENT_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    agreement_id: str
    reason: str
    def __init__(self, agreement_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class RevokeAgreementResponse(_message.Message):
    __slots__ = ("record",)
    RECORD_FIELD_NUMBER: _ClassVar[int]
    record: AgreementRecord
    def __init__(self, record: _Optional[_Union[AgreementRecord, _Mapping]] = ...) -> None: ...

class ListAgreementsRequest(_message.Message):
    __slots__ = ("agreement_id",)
    AGREEMENT_ID_FIELD_NUMBER: _ClassVar[int]
    agreement_id: str
    def __init__(self, agreement_id: _Optional[str] = ...) -> None: ...

class ListAgreementsResponse(_message.Message):
    __slots__ = ("agreements",)
    AGREEMENTS_FIELD_NUMBER: _ClassVar[int]
    agreements: _containers.RepeatedCompositeFieldContainer[AgreementRecord]
    def __init__(self, agreements: _Optional[_Iterable[_Union[AgreementRecord, _Mapping]]] = ...) -> None: ...

class ExportAgreementRequest(_message.Message):
    __slots__ = ("agreement_id",)
    AGREEMENT_ID_FIELD_NUMBER: _ClassVar[int]
    agreement_id: str
    def __init__(self, agreement_id: _Optional[str] = ...) -> None: ...

class ExportAgreementResponse(_message.Message):
    __slots__ = ("record", "agreement_yaml")
    RECORD_FIELD_NUMBER: _ClassVar[int]
    AGREEMENT_YAML_FIELD_NUMBER: _ClassVar[int]
    record: AgreementRecord
    agreement_yaml: str
    def __init__(self, record: _Optional[_Union[AgreementRecord, _Mapping]] = ..., agreement_yaml: _Optional[str] = ...) -> None: ...
