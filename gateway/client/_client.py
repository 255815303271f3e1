"""``GatewayClient``: calls ``Query`` and ``Explain`` with a bearer token."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from gateway.client._channel import open_channel
from gateway.pb.pgw.v1 import common_pb2, gateway_pb2, gateway_pb2_grpc


def parse_fields(specs: Iterable[str]) -> list[tuple[str, str]]:
    """``["bank.overdue_flag", ...]`` -> ``[("bank", "overdue_flag"), ...]``."""
    out = []
    for spec in specs:
        partner, sep, field = spec.partition(".")
        if not sep or not partner or not field:
            raise ValueError(f"field {spec!r}: want PARTNER.FIELD, e.g. bank.overdue_flag")
        out.append((partner, field))
    return out


def selections(fields: Sequence[tuple[str, str]]) -> list[common_pb2.Selection]:
    """Group (partner, field) pairs into one Selection per partner, keeping order."""
    by_partner: dict[str, list[str]] = {}
    for partner, field in fields:
        by_partner.setdefault(partner, []).append(field)
    return [common_pb2.Selection(partner=p, fields=f) for p, f in by_partner.items()]


class GatewayClient:
    """One channel to the gateway; use as an async context manager."""

    def __init__(self, address: str, token: str, *, timeout_s: float = 30.0,
                 ca: bytes | None = None) -> None:
        self._channel = open_channel(address, ca=ca)
        self._stub = gateway_pb2_grpc.GatewayServiceStub(self._channel)
        self._metadata = (("authorization", f"Bearer {token}"),)
        self._timeout = timeout_s

    async def __aenter__(self) -> GatewayClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close()

    async def query(self, purpose: str, subjects: Sequence[str],
                    fields: Sequence[tuple[str, str]]) -> gateway_pb2.QueryResponse:
        request = gateway_pb2.QueryRequest(purpose=purpose, subjects=list(subjects),
                                           selections=selections(fields))
        return await self._stub.Query(request, metadata=self._metadata,  # type: ignore[no-any-return]
                                      timeout=self._timeout)

    async def explain(self, purpose: str, fields: Sequence[tuple[str, str]],
                      subject_count: int = 1) -> gateway_pb2.ExplainResponse:
        request = gateway_pb2.ExplainRequest(purpose=purpose, subject_count=subject_count,
                                             selections=selections(fields))
        return await self._stub.Explain(request, metadata=self._metadata,  # type: ignore[no-any-return]
                                        timeout=self._timeout)
