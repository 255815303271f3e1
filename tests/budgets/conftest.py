"""Fixtures for the budget tests: one store per backend, and the harness modules.

``store_dsn`` is parametrised over the three stores. PostgreSQL needs ``PGW_TEST_PG_DSN``
(a fresh schema per test); Redis needs the ``redis`` package and a server at
``PGW_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/15``); each skips with the reason when
absent. The integration, crash and fault harnesses and ``_support.py`` here are the modules
``pgw_it_harness``, ``pgw_crash_harness``, ``pgw_hardening_faults`` and ``pgw_budget_support``
(registered by ``tests/conftest.py``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pgw_budget_support import pg_base, redis_url  # noqa: E402
from pgw_crash_harness import pg_schema  # noqa: E402


@pytest.fixture
def ns() -> str:
    """A per-test prefix for counter keys, so shared servers never mix tests."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres),
                        "redis"])
def store_dsn(request: pytest.FixtureRequest, tmp_path: Path, ns: str) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'budgets.db'}"
    elif request.param == "postgres":
        with pg_schema(pg_base()) as dsn:
            yield dsn
    else:
        import redis

        from gateway.budgets._redis import PREFIX

        url = redis_url()
        yield url
        client = redis.Redis.from_url(url)
        try:  # the counters would expire by themselves; leave the server as found
            for key in client.scan_iter(match=f"{PREFIX}{ns}*"):
                client.delete(key)
        finally:
            client.close()
