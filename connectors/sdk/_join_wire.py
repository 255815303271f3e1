"""The join wire contract shared by the three parties: sizes, enums, chunk codecs, RPC wrapper.

Requester, gateway and partner agree here on the point size, chunking, message ceilings, the
mode/output names (streaming RPCs map errors with :func:`gateway.status.rpc`, as unary ones).
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.logs import get_logger
from gateway.pb.pgw.v1 import join_pb2
from gateway.privacy import PackedItems, split_rows

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

