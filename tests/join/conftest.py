"""Fixtures for the join tests: a real stack (gateway and connectors on 127.0.0.1:0).

The stack pattern is the integration harness's (``tests/integration/_harness.py``, registered
by ``tests/conftest.py`` under its own module name): an asyncio loop in a thread, real servers,
real SQLite data.
The agreements are the shipped ones with one change: ``hpf-fraud-ss`` allows joins of up to
``JOIN_LIMIT`` requester items (so the limit refusal is cheap to test; joins are bounded by
``limits.max_subjects_per_request``, see docs/privacy.md).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest
from pgw_join_harness import LoopThread, Stack, start_stack  # noqa: E402
from pgw_join_support import JOIN_LIMIT, widen_join_limit  # noqa: E402

from gateway.config import Config, load_config  # noqa: E402
from gateway.workdir import init_workdir  # noqa: E402

T = TypeVar("T")
PEOPLE = 2_000
SEED = 20261125


@pytest.fixture(scope="session")
def loop() -> Iterator[LoopThread]:
    lt = LoopThread()
    yield lt
    lt.close()


@pytest.fixture(scope="session")
def cfg(tmp_path_factory: pytest.TempPathFactory) -> Config:
    root = tmp_path_factory.mktemp("pgw-join")
    init_workdir(root, people=PEOPLE, seed=SEED)
    widen_join_limit(root / "policies", JOIN_LIMIT)
    return load_config(root / "pgw.toml")


@pytest.fixture(scope="session")
def people(cfg: Config) -> dict[str, tuple[str, float]]:
    """Social security's raw rows: person id -> (insured_status, contribution_base)."""
    uri = cfg.connector("social-security").database.resolve().as_uri() + "?mode=ro"
    conn = sqlite3.connect(uri, uri=True)
    try:
        return {pid: (status, float(base)) for pid, status, base in conn.execute(
            'SELECT person_id, insured_status, contribution_base FROM "social_security"')}
    finally:
        conn.close()


@pytest.fixture(scope="session")
def active(people: dict[str, tuple[str, float]]) -> dict[str, float]:
    """The partner's join set under the agreement (insured_status active) with values."""
    return {pid: base for pid, (status, base) in people.items() if status == "active"}


@pytest.fixture(scope="session")
def stack(loop: LoopThread, cfg: Config) -> Iterator[Stack]:
    s = start_stack(loop, cfg)
    yield s
    s.close()


@pytest.fixture
def run(loop: LoopThread) -> Any:
    def go(coro: Coroutine[Any, Any, T], timeout: float = 120.0) -> T:
        return loop.run(coro, timeout)
    return go
