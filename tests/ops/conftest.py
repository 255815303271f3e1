"""Fixtures for the operations tests (issue 6, item 7): a stack with the admin endpoint on.

The integration harness is reused as the module ``pgw_it_harness`` (pytest runs with
``--import-mode=importlib`` and ``tests/`` is not a package).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pgw_it_harness import LoopThread, RawData, Stack, isolated_cfg, start_stack  # noqa: E402

from gateway.config import load_config  # noqa: E402
from gateway.workdir import init_workdir  # noqa: E402

PEOPLE = 300
SEED = 20261207


@pytest.fixture(scope="module")
def admin_stack(loop: LoopThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A gateway with ``admin_listen = "127.0.0.1:0"`` and its three connectors."""
    root = tmp_path_factory.mktemp("pgw-ops")
    init_workdir(root, people=PEOPLE, seed=SEED)
    cfg = isolated_cfg(load_config(root / "pgw.toml"), root / "run",
                       admin_listen="127.0.0.1:0")
    stack = start_stack(loop, cfg)
    yield stack
    stack.close()


@pytest.fixture(scope="module")
def raw(admin_stack: Stack) -> RawData:
    return RawData(admin_stack.cfg)
