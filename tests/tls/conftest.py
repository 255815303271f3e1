"""Fixtures for the transport-security tests: one stack with mutual TLS on.

The integration harness (``tests/integration/_harness.py``) is shared, registered as the module
``pgw_it_harness`` exactly as ``tests/integration/conftest.py`` does.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_NAME = "pgw_it_harness"
if _NAME not in sys.modules:
    _spec = importlib.util.spec_from_file_location(
        _NAME, Path(__file__).parent.parent / "integration" / "_harness.py")
    assert _spec is not None and _spec.loader is not None
    _module = importlib.util.module_from_spec(_spec)
    sys.modules[_NAME] = _module
    _spec.loader.exec_module(_module)

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
