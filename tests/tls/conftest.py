"""Fixtures for the transport-security tests: one stack with mutual TLS on.

The integration harness (``tests/integration/_harness.py``) is shared as the module
``pgw_it_harness`` (registered by ``tests/conftest.py``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pgw_it_harness import PEOPLE, SEED, LoopThread, Stack, start_stack  # noqa: E402

from gateway.config import Config, load_config  # noqa: E402
from gateway.workdir import init_workdir  # noqa: E402


@pytest.fixture(scope="module")
def tls_loop() -> Iterator[LoopThread]:
    lt = LoopThread()
    yield lt
    lt.close()


@pytest.fixture(scope="module")
def tls_cfg(tmp_path_factory: pytest.TempPathFactory) -> Config:
    root = tmp_path_factory.mktemp("pgw-tls")
    init_workdir(root, people=PEOPLE, seed=SEED, tls=True)  # `pgw init --tls`
    return load_config(root / "pgw.toml")


@pytest.fixture(scope="module")
def tls_stack(tls_loop: LoopThread, tls_cfg: Config) -> Iterator[Stack]:
    s = start_stack(tls_loop, tls_cfg)
    yield s
    s.close()
