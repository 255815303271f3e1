"""Per-agreement request-rate limits (``limits.requests_per_minute``).

A token bucket per agreement: capacity ``requests_per_minute``, refilled continuously. In one
process this is exact; several replicas each enforce the full rate (shared state across
replicas is future work). Refusals are ``RESOURCE_EXHAUSTED`` with google.rpc.QuotaFailure.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from google.protobuf.message import Message
from google.rpc import error_details_pb2

from gateway.errors import ResourceExhausted


class RateLimited(ResourceExhausted):
    def __init__(self, agreement: str, per_minute: int) -> None:
        super().__init__(f"rate limit of {agreement} reached ({per_minute} requests per "
                         "minute); retry later", reason=f"rate limit {agreement}")
        self.agreement, self.per_minute = agreement, per_minute

    def details(self) -> list[Message]:
        return [error_details_pb2.QuotaFailure(violations=[
            error_details_pb2.QuotaFailure.Violation(
                subject=f"agreement:{self.agreement}",
                description=f"limits.requests_per_minute = {self.per_minute}")])]


class RateLimiter:
    """Token buckets keyed by agreement id; ``clock`` is injected for tests."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # id -> (tokens, last refill)

    def take(self, agreement_id: str, per_minute: int) -> None:
        """Spend one request of ``agreement_id``'s budget or raise :class:`RateLimited`."""
        now = self._clock()
        tokens, last = self._buckets.get(agreement_id, (float(per_minute), now))
        tokens = min(float(per_minute), tokens + (now - last) * per_minute / 60.0)
        if tokens < 1.0:
            self._buckets[agreement_id] = (tokens, now)
            raise RateLimited(agreement_id, per_minute)
        self._buckets[agreement_id] = (tokens - 1.0, now)
