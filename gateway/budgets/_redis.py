"""Redis budget store (redis-py asyncio): counters shared by replicas, expiring by themselves.

Each spend is one ``EVALSHA`` of a Lua script, which Redis runs atomically: it reads every
counter, returns the position of the first one that the charge would take over its limit (in
the caller's order) without writing anything, or else ``INCRBY``s them all and sets each one's
time to live to the end of its window plus a minute. Keys share the hash tag ``{pgw-budget}``,
so on a Redis Cluster one script's keys are in one slot.

Needs the optional ``redis`` package (``pip install 'pgw[redis]'``). A connection error or a
reply slower than ``timeout_s`` raises :class:`~gateway.budgets.BudgetUnavailable`.
"""

from __future__ import annotations

from typing import Any

from gateway.budgets._errors import BudgetUnavailable
from gateway.budgets._store import BudgetStore, Charge
from gateway.errors import ConfigError

__all__ = ["RedisBudgetStore"]

PREFIX = "pgw:{pgw-budget}:"

# KEYS[i]: a counter in its window; ARGV[3i-2], ARGV[3i-1], ARGV[3i]: cost, limit, ttl (s).
_SPEND = """
for i = 1, #KEYS do
  local used = tonumber(redis.call('GET', KEYS[i]) or '0')
  if used + tonumber(ARGV[3*i-2]) > tonumber(ARGV[3*i-1]) then
    return i
  end
end
for i = 1, #KEYS do
  redis.call('INCRBY', KEYS[i], ARGV[3*i-2])
  redis.call('EXPIRE', KEYS[i], ARGV[3*i])
end
return 0
"""


class RedisBudgetStore(BudgetStore):
    """Counters in the Redis server at ``url`` (``redis://host:port/db`` or ``rediss://``)."""

    def __init__(self, url: str, *, timeout_s: float = 5.0) -> None:
        try:
            import redis.asyncio as aioredis
            from redis.exceptions import RedisError
        except ImportError:
            raise ConfigError(f"budget store {url}: the redis package is not installed; "
                              "pip install 'pgw[redis]'") from None
        self._errors: tuple[type[BaseException], ...] = (RedisError, OSError)
        self._redis: Any = aioredis.Redis.from_url(url, socket_timeout=timeout_s,
                                                   socket_connect_timeout=timeout_s)
        self._script = self._redis.register_script(_SPEND)
        self._url = url

    @classmethod
    async def open(cls, url: str, *, timeout_s: float = 5.0) -> RedisBudgetStore:
        """Connect and check the server answers (so a wrong URL fails at start-up)."""
        store = cls(url, timeout_s=timeout_s)
        try:
            await store._redis.ping()
        except store._errors as exc:
            await store.aclose()
            raise BudgetUnavailable(f"Redis budget store: cannot reach the server: "
                                    f"{type(exc).__name__}") from None
        return store

    async def _spend(self, charges: list[Charge], now: float) -> Charge | None:
        keys: list[str] = []
        args: list[Any] = []
        for c in charges:
            start, end = c.window(now)
            keys.append(f"{PREFIX}{c.key}:{start}")
            args.extend((c.cost, c.limit, max(1, int(end - now)) + 60))
        try:
            refused = int(await self._script(keys=keys, args=args))
        except self._errors as exc:
            raise BudgetUnavailable(f"Redis budget store: spend: {type(exc).__name__}",
                                    reason=f"budget store spend: {type(exc).__name__}") from None
        return charges[refused - 1] if refused else None

    async def aclose(self) -> None:
        await self._redis.aclose()
