"""Fixtures for the crash tests: the kill -9 rig of ``_harness.py`` on SQLite and PostgreSQL.

``_harness.py`` is registered by ``tests/conftest.py`` as the module ``pgw_crash_harness``
(pytest runs with ``--import-mode=importlib`` and ``tests/`` is not a package);
``bench/crash.py`` loads the same file by path, so the test and the benchmark share one loop.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from pgw_crash_harness import PG_ENV, CrashRig, pg_schema  # noqa: E402 - registered by tests/conftest.py

SEED_ENV = "PGW_CRASH_SEED"


@pytest.fixture(scope="module")
def crash_seed() -> int:
    """``PGW_CRASH_SEED`` to replay a run, else a fresh seed (printed by the test)."""
    value = os.environ.get(SEED_ENV)
    return int(value) if value else int.from_bytes(os.urandom(4), "big")


@pytest.fixture(scope="module",
                params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def crash_rig(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
              crash_seed: int) -> Iterator[CrashRig]:
    """A work directory and three running connectors, once per backend; audit log on SQLite or
    on a fresh PostgreSQL schema (skipped without ``PGW_TEST_PG_DSN``)."""
    with ExitStack() as stack:
        dsn = None
        if request.param == "postgres":
            base = os.environ.get(PG_ENV)
            if not base:
                pytest.skip(f"{PG_ENV} not set: the PostgreSQL crash test needs a server")
            dsn = stack.enter_context(pg_schema(base))
        rig = CrashRig(tmp_path_factory.mktemp(f"crash-{request.param}"), audit_dsn=dsn,
                       seed=crash_seed)
        stack.callback(rig.close)
        yield rig
