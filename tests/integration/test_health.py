"""The standard gRPC health service answers SERVING on the gateway and every connector."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pgw_it_harness import Stack

from gateway.config import PARTNERS

SERVING = health_pb2.HealthCheckResponse.SERVING


def check(stack: Stack, address: str, service: str) -> int:
    stub = health_pb2_grpc.HealthStub(stack.channel(address))
    return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status


@pytest.mark.parametrize("service", ["", "pgw.v1.GatewayService"])
def test_gateway_is_serving(stack: Stack, service: str) -> None:
    assert check(stack, stack.address, service) == SERVING


@pytest.mark.parametrize("partner", PARTNERS)
@pytest.mark.parametrize("service", ["", "pgw.v1.ConnectorService"])
def test_connectors_are_serving(stack: Stack, partner: str, service: str) -> None:
    assert check(stack, stack.connector_address(partner), service) == SERVING


def test_unknown_service_is_not_found(stack: Stack) -> None:
    with pytest.raises(grpc.RpcError) as info:
        check(stack, stack.address, "pgw.v1.NoSuchService")
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
