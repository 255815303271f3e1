"""Helpers for the budget tests (registered by conftest.py as ``pgw_budget_support``)."""

from __future__ import annotations

import os

import pytest
from pgw_crash_harness import PG_ENV

REDIS_ENV = "PGW_TEST_REDIS_URL"
REDIS_DEFAULT = "redis://127.0.0.1:6379/15"


def pg_base() -> str:
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} not set: PostgreSQL budget tests need a server")
    return base


def redis_url() -> str:
    """The test Redis URL, or skip (with the reason) when the package or server is absent."""
    try:
        import redis
    except ImportError:
        pytest.skip("the redis package is not installed: pip install 'pgw[redis]'")
    url = os.environ.get(REDIS_ENV, REDIS_DEFAULT)
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"no Redis server at {url} ({type(exc).__name__}); set {REDIS_ENV}")
    finally:
        client.close()
    return url
