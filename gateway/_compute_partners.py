"""Dispatch to partners for encrypted compute: channels to each connector's
PartnerComputeService and the Encrypt request stream (a connector's failure is mapped into the
pgw error tree by ``gateway.upstream``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from gateway.packed_ids import WIDTH, PackedIds
from gateway.pb.pgw.v1 import compute_pb2, compute_pb2_grpc, connector_pb2

MAX_MESSAGE = 16 * 1024 * 1024


class PartnerCompute:
    """Channels to the connectors' PartnerComputeService, opened lazily."""

    def __init__(self, addresses: dict[str, str], *,
                 credentials: grpc.ChannelCredentials | None = None) -> None:
        self._addresses = dict(addresses)
        self._credentials = credentials  # mutual TLS to the connectors; None: plaintext
        self._stubs: dict[str, compute_pb2_grpc.PartnerComputeServiceStub] = {}
        self._channels: list[grpc.aio.Channel] = []

    @property
    def partners(self) -> list[str]:
        return sorted(self._addresses)

    def stub(self, partner: str) -> compute_pb2_grpc.PartnerComputeServiceStub:
        if partner not in self._stubs:
            options = [("grpc.max_receive_message_length", MAX_MESSAGE),
                       ("grpc.max_send_message_length", MAX_MESSAGE)]
            channel = (grpc.aio.insecure_channel(self._addresses[partner], options=options)
                       if self._credentials is None else grpc.aio.secure_channel(
                           self._addresses[partner], self._credentials, options=options))
            self._channels.append(channel)
            self._stubs[partner] = compute_pb2_grpc.PartnerComputeServiceStub(channel)
        return self._stubs[partner]

    async def aclose(self) -> None:
        for channel in self._channels:
            await channel.close()
        self._channels.clear()
        self._stubs.clear()


async def encrypt_requests(signed: connector_pb2.SignedReleaseSpec, material: bytes,
                           subjects: PackedIds) -> AsyncIterator[compute_pb2.EncryptRequest]:
    """The Encrypt stream to one partner: the signed spec and context, then the packed
    subjects, 65,536 per message."""
    yield compute_pb2.EncryptRequest(start=compute_pb2.EncryptStart(
        signed_spec=signed, public_context=material))
    step = 65536 * WIDTH
    for i in range(0, len(subjects.data), step):
        yield compute_pb2.EncryptRequest(subjects=compute_pb2.SubjectChunk(
            ids=subjects.data[i:i + step]))
