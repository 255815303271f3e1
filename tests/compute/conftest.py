"""Fixtures for the compute tests: one shared stack on the shipped agreements and models.

``_harness.py`` is registered by ``tests/conftest.py`` as the module ``pgw_compute_harness``
(pytest runs with ``--import-mode=importlib`` and ``tests/`` is not a package).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pgw_compute_harness import PEOPLE, SEED, LoopThread, RawData, Stack, start_stack  # noqa: E402

from gateway.config import Config, load_config  # noqa: E402
from gateway.privacy import HeKeys  # noqa: E402
from gateway.workdir import init_workdir  # noqa: E402


@pytest.fixture(scope="session")
def he_keys() -> HeKeys:
    return HeKeys.ckks()


@pytest.fixture(scope="session")
def compute_loop() -> Iterator[LoopThread]:
    lt = LoopThread()
    yield lt
    lt.close()


@pytest.fixture(scope="session")
def compute_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pgw-compute")
    init_workdir(root, people=PEOPLE, seed=SEED)
    return root


@pytest.fixture(scope="session")
def compute_cfg(compute_workdir: Path) -> Config:
    return load_config(compute_workdir / "pgw.toml")


@pytest.fixture(scope="session")
def raw(compute_cfg: Config) -> RawData:
    return RawData(compute_cfg)


@pytest.fixture(scope="session")
def stack(compute_loop: LoopThread, compute_cfg: Config, he_keys: HeKeys) -> Iterator[Stack]:
    s = start_stack(compute_loop, compute_cfg, he_keys)
    yield s
    s.close()
