"""Budget refusals and failures as pgw errors, and their client-side reading.

A refusal is ``RESOURCE_EXHAUSTED`` with a google.rpc.QuotaFailure naming what was exhausted
(``agreement:hpf-loan-ss``, ``subject#3`` -- the index in the request, never the id --, or
``cohort:district_code``) and the limit (``limits.queries_per_subject_per_day = 20``), plus a
google.rpc.RetryInfo for when the window ends. A store that cannot be reached is
``UNAVAILABLE``: the gateway fails closed and releases nothing.
"""

from __future__ import annotations

import grpc
from google.protobuf import duration_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from gateway.budgets._store import Charge
from gateway.errors import GatewayError, ResourceExhausted, Unavailable

__all__ = ["BudgetExhausted", "BudgetUnavailable", "audit_decision", "quota_violations"]


class BudgetExhausted(ResourceExhausted):
    """A request would go over ``charge``'s limit; nothing was charged or released."""

    def __init__(self, charge: Charge, retry_after_s: float) -> None:
        self.charge = charge
        self.retry_after_s = max(1, int(retry_after_s + 0.999))
        limit = f"{charge.limit_name} = {charge.limit}"
        super().__init__(
            f"budget exhausted: {limit} for {charge.subject} under {charge.scope}; nothing "
            f"was released, retry in {self.retry_after_s} s",
            reason=f"budget: {limit} reached for {charge.subject} under {charge.scope}")

    def details(self) -> list[Message]:
        return [
            error_details_pb2.QuotaFailure(violations=[error_details_pb2.QuotaFailure.Violation(
                subject=self.charge.subject,
                description=f"{self.charge.limit_name} = {self.charge.limit}")]),
            error_details_pb2.RetryInfo(
                retry_delay=duration_pb2.Duration(seconds=self.retry_after_s)),
        ]


class BudgetUnavailable(Unavailable):
    """The budget store cannot be reached: fail closed."""

    public_message = "the budget store cannot be reached; nothing was released, retry later"


def audit_decision(err: GatewayError) -> str:
    """How a failed budget check is audited: an exhausted budget is a ``deny``, anything else
    (the store unreachable) an ``error``."""
    return "deny" if isinstance(err, ResourceExhausted) else "error"


def quota_violations(err: grpc.RpcError) -> list[tuple[str, str]]:
    """Client side: the ``(subject, description)`` pairs of a QuotaFailure, if any."""
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    if status is None:
        return []
    out: list[tuple[str, str]] = []
    for detail in status.details:
        failure = error_details_pb2.QuotaFailure()
        if detail.Unpack(failure):
            out.extend((v.subject, v.description) for v in failure.violations)
    return out
