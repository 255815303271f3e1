"""The requester SDK: a thin async client for the gateway's requester API."""

from gateway.client._client import GatewayClient, parse_fields, selections

__all__ = ["GatewayClient", "parse_fields", "selections"]
