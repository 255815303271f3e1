"""Dialling connectors: catalogues by ``Describe``, releases by signed ``Fetch``.

Third-party (grpc) errors are converted where they enter, by ``gateway.upstream``, into the pgw
error tree.
Deadlines propagate: each call gets the requester's remaining time, capped by the configured
per-request timeout. Under load, the specs waiting for one partner share a ``FetchBatch`` call
(``gateway._coalesce``); each keeps its own answer, error and deadline.
"""

from __future__ import annotations

import grpc

from connectors.sdk._schema import FieldType
from gateway._coalesce import DEFAULT_MAX_INFLIGHT, FetchLanes
from gateway.errors import Unavailable
from gateway.metrics import CONNECTOR_CALL_SECONDS
from gateway.pb.pgw.v1 import connector_pb2, connector_pb2_grpc
from gateway.upstream import partner_failure

MAX_MESSAGE = 16 * 1024 * 1024
KIND_TO_TYPE = {connector_pb2.FieldKind.Value(f"FIELD_KIND_{t.name}"): t for t in FieldType}


class Catalogue:
    """One partner's field catalogue as published by its connector."""

    def __init__(self, response: connector_pb2.DescribeResponse) -> None:
        self.partner = response.partner
        self.fields = {f.name: KIND_TO_TYPE[f.kind] for f in response.fields
                       if f.kind in KIND_TO_TYPE}


class ConnectorClients:
    """A channel per partner, opened lazily; catalogues cached after the first Describe.

    ``max_inflight``: Fetch calls in flight per partner before further specs queue and go out
    together as one FetchBatch ([gateway] connector_max_inflight).
    """

    def __init__(self, addresses: dict[str, str], *, timeout_s: float = 10.0,
                 credentials: grpc.ChannelCredentials | None = None,
                 max_inflight: int = DEFAULT_MAX_INFLIGHT) -> None:
        self._addresses = dict(addresses)
        self._credentials = credentials  # mutual TLS to the connectors; None: plaintext
        self._timeout = timeout_s
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._stubs: dict[str, connector_pb2_grpc.ConnectorServiceStub] = {}
        self._catalogues: dict[str, Catalogue] = {}
        self._lanes = FetchLanes(self._stub, max_inflight=max_inflight)

    @property
    def partners(self) -> list[str]:
        return sorted(self._addresses)

    def _stub(self, partner: str) -> connector_pb2_grpc.ConnectorServiceStub:
        stub = self._stubs.get(partner)
        if stub is None:
            options = [("grpc.max_receive_message_length", MAX_MESSAGE),
                       ("grpc.max_send_message_length", MAX_MESSAGE)]
            channel = (grpc.aio.insecure_channel(self._addresses[partner], options=options)
                       if self._credentials is None else grpc.aio.secure_channel(
                           self._addresses[partner], self._credentials, options=options))
            self._channels[partner] = channel
            stub = self._stubs[partner] = connector_pb2_grpc.ConnectorServiceStub(channel)
        return stub

    def _timeout_for(self, remaining: float | None) -> float:
        return self._timeout if remaining is None else max(0.001, min(self._timeout, remaining))

    async def catalogue(self, partner: str) -> Catalogue:
        if partner not in self._catalogues:
            try:
                with CONNECTOR_CALL_SECONDS.time(partner=partner, method="Describe"):
                    response = await self._stub(partner).Describe(
                        connector_pb2.DescribeRequest(), timeout=self._timeout)
            except grpc.aio.AioRpcError as err:
                raise partner_failure(partner, err, operation="query") from None
            if response is None:  # grpc.aio answers None for bytes it cannot decode
                raise Unavailable(f"connector for {partner} answered an undecodable catalogue",
                                  reason="undecodable Describe answer")
            if response.partner != partner:
                raise Unavailable(f"connector for {partner} describes itself as another partner",
                                  reason="describe partner mismatch")
            self._catalogues[partner] = Catalogue(response)
        return self._catalogues[partner]

    async def fetch(self, partner: str, signed: connector_pb2.SignedReleaseSpec,
                    remaining: float | None) -> connector_pb2.FetchResponse:
        """``partner``'s answer to ``signed``; a GatewayError (``partner_failure``) if none."""
        return await self._lanes.fetch(partner, signed, self._timeout_for(remaining))

    async def cosign(self, partner: str, request: connector_pb2.CosignRequest
                     ) -> connector_pb2.CosignResponse:
        """Ask a partner's witness to cosign; grpc errors pass through (the caller reads them)."""
        return await self._stub(partner).Cosign(  # type: ignore[no-any-return]
            request, timeout=self._timeout)

    async def aclose(self) -> None:
        await self._lanes.aclose()
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()
        self._stubs.clear()

