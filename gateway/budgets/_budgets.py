"""What a request costs under its agreements' limits, and spending it (the gateway's side).

Counters (DESIGN.md "Rate and volume limits per agreement"; docs/policies.md "Budgets"):

* ``rate:AGREEMENT`` per minute, limit ``requests_per_minute``: one per request;
* ``volume:AGREEMENT`` per UTC day, limit ``subjects_per_day``: the subjects a request names
  (ids for Query and linear Compute, the blinded set size for Join);
* ``subject:HMAC(org, id)`` per UTC day, limit ``queries_per_subject_per_day``: one per request
  and agreement that sets the key. The counter belongs to the requester org and the person,
  not to one agreement, so alternating between agreements with different predicate thresholds
  (bisection) spends one budget, bounded by the strictest agreement involved;
* ``cohort:HMAC(org, partner, attribute, value)`` per UTC day, limit
  ``queries_per_cohort_per_day``: one per aggregate over that cohort (differencing over time).

Agreement counters are keyed by agreement id (a new version does not reset them). Person ids
and cohort values only ever enter the store as HMAC-SHA256 under a key derived from the audit
pseudonym secret (:func:`budget_secret`), so the store holds no personal data and replicas
sharing the key material share the counters.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections.abc import Callable, Sequence

from gateway.budgets._errors import BudgetExhausted
from gateway.budgets._sqlite import SqliteBudgetStore
from gateway.budgets._store import DAY, MINUTE, BudgetStore, Charge
from gateway.policy import Agreement

__all__ = ["Budgets", "budget_secret"]


def budget_secret(pseudonym_key: bytes) -> bytes:
    """The HMAC key for subject and cohort counters, derived from the audit pseudonym secret
    (domain-separated, so a counter key never equals an audit pseudonym)."""
    return hmac.new(pseudonym_key, b"pgw budgets v1: counter keys", hashlib.sha256).digest()


class Budgets:
    """Builds the charges of a request and spends them in ``store``; ``clock`` is injected."""

    def __init__(self, store: BudgetStore, secret: bytes,
                 clock: Callable[[], float] = time.time) -> None:
        if len(secret) < 16:
            raise ValueError(f"budget secret: got {len(secret)} bytes, want >= 16")
        self.store, self._secret, self._clock = store, secret, clock

    @classmethod
    def in_process(cls) -> Budgets:
        """Counters in this process's memory only (for a service built without a store; the
        server always wires the configured, persistent one)."""
        return cls(SqliteBudgetStore(":memory:"), os.urandom(32))

    def _hash(self, *parts: str) -> str:
        data = "\x00".join(parts).encode()
        return hmac.new(self._secret, data, hashlib.sha256).hexdigest()[:32]

    async def request(self, org: str, agreements: Sequence[Agreement], *,
                      subjects: Sequence[str] = (), count: int | None = None) -> None:
        """Spend one request under ``agreements`` about ``subjects`` (or, when the gateway
        never sees the ids, ``count`` of them), or raise BudgetExhausted having spent nothing."""
        n = len(subjects) if count is None else count
        charges = [_rate(a) for a in agreements]
        for a in agreements:
            if a.limits.subjects_per_day is not None and n > 0:
                charges.append(Charge(f"volume:{a.id}", DAY, a.limits.subjects_per_day, n,
                                      f"agreement:{a.id}", "limits.subjects_per_day",
                                      a.label))
        counted = [a for a in agreements if a.limits.queries_per_subject_per_day is not None]
        if counted and subjects:  # one per agreement on the shared counter, strictest limit
            strict = min(counted, key=lambda a: a.limits.queries_per_subject_per_day or 0)
            limit = strict.limits.queries_per_subject_per_day or 0
            charges.extend(Charge(f"subject:{self._hash(org, s)}", DAY, limit, len(counted),
                                  f"subject#{i}", "limits.queries_per_subject_per_day",
                                  strict.label)
                           for i, s in enumerate(subjects))
        await self._spend(charges)

    async def cohort(self, org: str, agreement: Agreement, attribute: str, value: str) -> None:
        """Spend one aggregate over the cohort ``attribute=value`` of ``agreement``'s partner."""
        charges = [_rate(agreement)]
        per_cohort = agreement.limits.queries_per_cohort_per_day
        if per_cohort is not None:
            key = self._hash(org, agreement.partner, attribute, value)
            charges.append(Charge(f"cohort:{key}", DAY, per_cohort, 1, f"cohort:{attribute}",
                                  "limits.queries_per_cohort_per_day", agreement.label))
        await self._spend(charges)

    async def _spend(self, charges: list[Charge]) -> None:
        now = self._clock()
        refused = await self.store.spend(charges, now)
        if refused is not None:
            raise BudgetExhausted(refused, refused.window(now)[1] - now)

    async def aclose(self) -> None:
        await self.store.aclose()


def _rate(a: Agreement) -> Charge:
    return Charge(f"rate:{a.id}", MINUTE, a.limits.requests_per_minute, 1, f"agreement:{a.id}",
                  "limits.requests_per_minute", a.label)
