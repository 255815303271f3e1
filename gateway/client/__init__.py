"""The requester SDK: a thin async client for the gateway's requester API."""

from gateway.client._client import GatewayClient, parse_fields, selections
from gateway.client._compute import AggregateResult, ComputeClient, ScoreResult
from gateway.client._join import JoinClient, JoinResult

__all__ = ["AggregateResult", "ComputeClient", "GatewayClient", "JoinClient", "JoinResult",
           "ScoreResult", "parse_fields",
           "selections"]
