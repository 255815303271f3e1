"""The one place where errors become gRPC status.

Every servicer method of the gateway and the connectors is wrapped with :func:`rpc`: it gives
the call a request id, binds it to the log context, and maps any :class:`GatewayError` to its
status code plus ``google.rpc`` details (BadRequest field violations, ErrorInfo with the refused
fields). Anything else becomes a bare ``INTERNAL`` with no stack trace and no message text, and
is logged (redacted) for the operators. :func:`settle` does the same for one item of a batch
RPC (``FetchBatch``), so each item ends exactly as a unary call of it would.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from gateway.errors import GatewayError
from gateway.logs import bind_request_id, get_logger

log = get_logger("pgw.rpc")
T = TypeVar("T")


def new_request_id() -> str:
    """A random UUID-shaped id: dashed groups of hex never form a digit run long enough
    to be mistaken for an id or a card number by the log redaction."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def status_of(err: GatewayError) -> status_pb2.Status:
    """The ``google.rpc.Status`` for an error: its code, outward message and details."""
    packed = []
    for d in err.details():
        a = any_pb2.Any()
        a.Pack(d)
        packed.append(a)
    return status_pb2.Status(code=err.code.value[0], message=err.outward_message(),
                             details=packed)


def to_status(err: GatewayError) -> grpc.Status:
    """The gRPC status (code, message, ``grpc-status-details-bin``) for an error."""
    return rpc_status.to_status(status_of(err))


def _internal_message(rid: str) -> str:
    return f"internal error (request id {rid}); the operators have the log"


def _log_refused(method: str, err: GatewayError, started: float) -> None:
    log.info("rpc_refused", method=method, code=err.code.name, reason=err.reason,
             duration_ms=round((time.perf_counter() - started) * 1000, 2))


async def settle(work: Callable[[], Awaitable[T]], *, method: str) -> T | status_pb2.Status:
    """One item of a batch RPC, settled as :func:`rpc` settles a whole call: under a request id
    of its own, its result, or the ``google.rpc.Status`` a unary call of it would have ended
    with (the same mapping and the same log lines). Run each item in its own task (``gather``)
    so that the request id bound here stays the item's."""
    return await _settled(lambda _rid: work(), method)


async def _settled(work: Callable[[str], Awaitable[T]], method: str) -> T | status_pb2.Status:
    """``work(request_id)`` under a fresh request id: its result or its status, logged."""
    rid = new_request_id()
    bind_request_id(rid)
    started = time.perf_counter()
    try:
        result = await work(rid)
    except GatewayError as err:
        _log_refused(method, err, started)
        return status_of(err)
    except (grpc.aio.AbortError, GeneratorExit):
        raise
    except Exception as exc:  # noqa: BLE001 - last line of defence: no stack trace outward
        log.error("rpc_internal_error", method=method, exc_info=exc)
        return status_pb2.Status(code=grpc.StatusCode.INTERNAL.value[0],
                                 message=_internal_message(rid))
    log.debug("rpc_ok", method=method, code="OK",
              duration_ms=round((time.perf_counter() - started) * 1000, 2))
    return result


def rpc(method: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """Wrap an async servicer method with request ids, logging and error mapping; the
    method gets the request id as a fourth argument."""

    @functools.wraps(method)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> T:
        outcome = await _settled(lambda rid: method(self, request, context, rid),
                                 method.__name__)
        if isinstance(outcome, status_pb2.Status):
            status = rpc_status.to_status(outcome)
            await context.abort(status.code, status.details, status.trailing_metadata)
        return outcome  # type: ignore[return-value]

    return wrapper


def bad_request_fields(err: grpc.aio.AioRpcError | grpc.RpcError) -> list[str]:
    """Client side: the BadRequest field names carried by a failed call (for CLIs and tests)."""
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    if status is None:
        return []
    fields: list[str] = []
    for detail in status.details:
        br = error_details_pb2.BadRequest()
        if detail.Unpack(br):
            fields.extend(v.field for v in br.field_violations)
    return fields


def error_info(err: grpc.aio.AioRpcError | grpc.RpcError, reason: str) -> dict[str, str] | None:
    """Client side: the metadata of the ErrorInfo detail with ``reason``, if any."""
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    if status is None:
        return None
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info) and info.reason == reason:
            return dict(info.metadata)
    return None


def refused_fields(err: grpc.aio.AioRpcError | grpc.RpcError) -> list[str]:
    """Client side: the refused fields carried by a PERMISSION_DENIED answer."""
    info = error_info(err, "FIELDS_NOT_GRANTED")
    return info["refused_fields"].split(",") if info else []
