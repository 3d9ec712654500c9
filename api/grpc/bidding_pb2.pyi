from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BidRequest(_message.Message):
    __slots__ = ("openrtb_json",)
    OPENRTB_JSON_FIELD_NUMBER: _ClassVar[int]
    openrtb_json: bytes
    def __init__(self, openrtb_json: _Optional[bytes] = ...) -> None: ...

class BidResponse(_message.Message):
    __slots__ = ("status", "openrtb_json", "no_bid_reason", "error", "request_id")
    class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATUS_UNSPECIFIED: _ClassVar[BidResponse.Status]
        BID: _ClassVar[BidResponse.Status]
        NO_BID: _ClassVar[BidResponse.Status]
        INVALID: _ClassVar[BidResponse.Status]
    STATUS_UNSPECIFIED: BidResponse.Status
    BID: BidResponse.Status
    NO_BID: BidResponse.Status
    INVALID: BidResponse.Status
    STATUS_FIELD_NUMBER: _ClassVar[int]
    OPENRTB_JSON_FIELD_NUMBER: _ClassVar[int]
    NO_BID_REASON_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    status: BidResponse.Status
    openrtb_json: bytes
    no_bid_reason: str
    error: Error
    request_id: str
    def __init__(self, status: _Optional[_Union[BidResponse.Status, str]] = ..., openrtb_json: _Optional[bytes] = ..., no_bid_reason: _Optional[str] = ..., error: _Optional[_Union[Error, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class Error(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class HealthCheckRequest(_message.Message):
    __slots__ = ("service",)
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    service: str
    def __init__(self, service: _Optional[str] = ...) -> None: ...

class HealthCheckResponse(_message.Message):
    __slots__ = ("status",)
    class ServingStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        UNKNOWN: _ClassVar[HealthCheckResponse.ServingStatus]
        SERVING: _ClassVar[HealthCheckResponse.ServingStatus]
        NOT_SERVING: _ClassVar[HealthCheckResponse.ServingStatus]
    UNKNOWN: HealthCheckResponse.ServingStatus
    SERVING: HealthCheckResponse.ServingStatus
    NOT_SERVING: HealthCheckResponse.ServingStatus
    STATUS_FIELD_NUMBER: _ClassVar[int]
    status: HealthCheckResponse.ServingStatus
    def __init__(self, status: _Optional[_Union[HealthCheckResponse.ServingStatus, str]] = ...) -> None: ...
