"""The join wire contract shared by the three parties: sizes, enums, chunk codecs, RPC wrapper.

Requester, gateway and partner agree here on the point size, chunking, message ceilings, the
mode/output names and how streaming RPCs map errors to status (:func:`stream_rpc`).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import grpc

from gateway.errors import GatewayError
from gateway.logs import bind_request_id, get_logger
from gateway.pb.pgw.v1 import join_pb2
from gateway.privacy import PackedItems, split_rows
from gateway.status import new_request_id, to_status

log = get_logger("pgw.join")

POINT = 32
#: Points per chunk on the wire by default (512 KiB) and at most (2 MiB).
CHUNK_ITEMS = 16384
MAX_CHUNK_ITEMS = 65536
#: Byte strings (HE material, ciphertexts) travel in pieces of at most this size.
BYTES_CHUNK = 1 << 20
#: gRPC message ceiling for join streams, both directions, all three parties.
MAX_JOIN_MESSAGE = 4 * 1024 * 1024
#: Hard ceiling on either set in one job, whatever an agreement says.
MAX_JOIN_ITEMS = 1 << 22
CHANNEL_OPTIONS = [("grpc.max_receive_message_length", MAX_JOIN_MESSAGE),
                   ("grpc.max_send_message_length", MAX_JOIN_MESSAGE)]

MODES = {join_pb2.JOIN_MODE_ECDH_PSI: "ecdh-psi", join_pb2.JOIN_MODE_KEYED_HASH: "keyed-hash"}
OUTPUTS = {join_pb2.JOIN_OUTPUT_MEMBERSHIP: "membership",
           join_pb2.JOIN_OUTPUT_CARDINALITY: "cardinality",
           join_pb2.JOIN_OUTPUT_INTERSECTION_SUM: "intersection-sum"}
MODE_OF = {v: k for k, v in MODES.items()}
OUTPUT_OF = {v: k for k, v in OUTPUTS.items()}


# ---------------------------------------------------------------------------- wire helpers

def split(packed: bytes | bytearray, size: int = POINT) -> list[bytes]:
    """Concatenated fixed-size values -> list (raises PrivacyError on a ragged length)."""
    return split_rows(packed, size)


def chunk_of(offset: int, values: Sequence[bytes]) -> join_pb2.PointChunk:
    return join_pb2.PointChunk(offset=offset, packed=b"".join(values))


def byte_chunks(data: bytes) -> list[join_pb2.BytesChunk]:
    """``data`` cut into :data:`BYTES_CHUNK` pieces, the last one flagged."""
    pieces = [data[i:i + BYTES_CHUNK] for i in range(0, len(data), BYTES_CHUNK)] or [b""]
    return [join_pb2.BytesChunk(data=p, last=i == len(pieces) - 1) for i, p in enumerate(pieces)]


def item_bytes(person_id: str) -> bytes:
    """What both sides hash or HMAC for a (normalised) person id."""
    return person_id.encode("ascii")


def items_of(person_ids: list[str]) -> Sequence[bytes]:
    """:func:`item_bytes` of each id: one buffer when the ids share a length (ids do)."""
    return PackedItems.from_ids(person_ids) or [item_bytes(p) for p in person_ids]



# ---------------------------------------------------------------------------- streaming RPCs

def stream_rpc(method: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """The streaming twin of :func:`gateway.status.rpc`: request id, logging, error mapping.

    The wrapped method takes ``(self, request_iterator, context, rid)`` and writes its answers
    with ``context.write``. A :class:`GatewayError` becomes its status with ``google.rpc``
    details; anything else a bare INTERNAL, never a stack trace.
    """

    @functools.wraps(method)
    async def wrapper(self: Any, request_iterator: Any, context: grpc.aio.ServicerContext) -> None:
        rid = new_request_id()
        bind_request_id(rid)
        started = time.perf_counter()
        name = method.__name__
        try:
            await method(self, request_iterator, context, rid)
        except GatewayError as err:
            status = to_status(err)
            log.info("rpc_refused", method=name, code=err.code.name, reason=err.reason,
                     duration_ms=round((time.perf_counter() - started) * 1000, 2))
            await context.abort(status.code, status.details, status.trailing_metadata)
        except (grpc.aio.AbortError, asyncio.CancelledError, GeneratorExit):
            raise
        except Exception as exc:  # noqa: BLE001 - last line of defence: no stack trace outward
            log.error("rpc_internal_error", method=name, exc_info=exc)
            await context.abort(grpc.StatusCode.INTERNAL,
                                f"internal error (request id {rid}); the operators have the log")
        else:
            log.debug("rpc_ok", method=name, code="OK",
                      duration_ms=round((time.perf_counter() - started) * 1000, 2))

    return wrapper
