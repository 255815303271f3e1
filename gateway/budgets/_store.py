"""The budget store contract: one atomic, all-or-nothing ``spend`` over several counters.

A :class:`Charge` asks for ``cost`` more uses of the counter ``key`` in the current *fixed*
window of ``window_s`` seconds, at most a day (``MINUTE`` for rates, ``DAY`` for volumes: a
window starts at a multiple of its length since the Unix epoch, so a day window is a UTC
day). The charge is allowed only while the window's total stays at or below ``limit``.

:meth:`BudgetStore.spend` charges every counter or none: if any charge would go over its limit,
nothing is charged and the first violated charge (in the caller's order) is returned. Charges
on the same counter in one call are merged first (costs added, the strictest limit kept), so
"one per agreement" charges on a shared counter are counted together.

Fixed windows are simple to share between replicas (one row or key per counter and window)
and to expire; the price is that a burst of up to twice a rate can straddle a window edge.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, replace

__all__ = ["DAY", "MINUTE", "BudgetStore", "Charge", "merge"]

MINUTE = 60
DAY = 86_400


@dataclass(frozen=True)
class Charge:
    """``cost`` more uses of counter ``key`` in the current window; allowed up to ``limit``.

    ``key`` must never hold personal data (the gateway keys per-subject counters by a keyed
    hash). ``subject``, ``limit_name`` and ``scope`` only describe the charge to the requester
    and the audit: e.g. ``subject#3``, ``limits.queries_per_subject_per_day``, ``hpf-loan-ss v1``.
    """

    key: str
    window_s: int
    limit: int
    cost: int = 1
    subject: str = ""
    limit_name: str = ""
    scope: str = ""

    def __post_init__(self) -> None:
        if not self.key or not 1 <= self.window_s <= DAY or self.limit < 1 or self.cost < 1:
            raise ValueError(f"charge {self.key!r}: got window_s={self.window_s}, "
                             f"limit={self.limit}, cost={self.cost}; want a key, a window of "
                             f"1..{DAY} s, limit and cost >= 1")

    def window(self, now: float) -> tuple[int, int]:
        """``(start, end)`` of the fixed window holding ``now``, in whole Unix seconds."""
        start = int(now // self.window_s) * self.window_s
        return start, start + self.window_s


def merge(charges: Sequence[Charge]) -> list[Charge]:
    """One charge per ``(key, window_s)``, in first-seen order: costs added, the strictest
    limit (and its description) kept."""
    out: dict[tuple[str, int], Charge] = {}
    for c in charges:
        seen = out.get((c.key, c.window_s))
        if seen is None:
            out[(c.key, c.window_s)] = c
        else:
            strict = c if c.limit < seen.limit else seen
            out[(c.key, c.window_s)] = replace(strict, cost=seen.cost + c.cost)
    return list(out.values())


class BudgetStore(abc.ABC):
    """Where the counters live: SQLite (embedded), PostgreSQL or Redis (shared by replicas).

    Implementations raise :class:`~gateway.budgets.BudgetUnavailable` when the store cannot
    be reached, so the caller fails closed.
    """

    async def spend(self, charges: Sequence[Charge], now: float) -> Charge | None:
        """Charge all of ``charges`` at time ``now`` (Unix seconds), or none of them.

        Returns ``None`` when everything was charged, else the first violated charge (merged
        with its duplicates) and nothing was charged.
        """
        merged = merge(charges)
        return await self._spend(merged, now) if merged else None

    @abc.abstractmethod
    async def _spend(self, charges: list[Charge], now: float) -> Charge | None:
        """``spend`` over distinct counters (already merged, at least one)."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Release the connection(s)."""
