"""Fixtures for the hardening tests (issue 6, items 3-5): faults, fuzzing, replicas.

The integration harness (``tests/integration/_harness.py``) and the crash rig
(``tests/crash/_harness.py``) are reused as the modules ``pgw_it_harness`` and
``pgw_crash_harness`` (pytest runs with ``--import-mode=importlib`` and ``tests/`` is not a
package); ``_faults.py`` here holds the fault-injecting connector subprocess and a TCP proxy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pgw_it_harness import LoopThread, RawData, Stack, isolated_cfg, start_stack  # noqa: E402

from gateway.config import Config, load_config  # noqa: E402
from gateway.workdir import init_workdir  # noqa: E402

PEOPLE = 300
SEED = 20261206


@pytest.fixture(scope="session")
def loop() -> Iterator[LoopThread]:
    lt = LoopThread()
    yield lt
    lt.close()


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pgw-hardening")
    init_workdir(root, people=PEOPLE, seed=SEED)
    return root


@pytest.fixture(scope="session")
def base_cfg(workdir: Path) -> Config:
    return load_config(workdir / "pgw.toml")


@pytest.fixture(scope="session")
def raw(base_cfg: Config) -> RawData:
    return RawData(base_cfg)


@pytest.fixture(scope="session")
def stack(loop: LoopThread, base_cfg: Config,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One in-process stack (own audit log) shared by the fuzz module."""
    s = start_stack(loop, isolated_cfg(base_cfg, tmp_path_factory.mktemp("shared-stack")))
    yield s
    s.close()


@pytest.fixture
def gateway_for(loop: LoopThread, base_cfg: Config,
                tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    """Start an in-process gateway whose connectors are the given addresses (subprocesses
    from ``_faults.py``); the stack is closed after the test (its connectors are not ours)."""
    from gateway.auth import DevIssuer
    from gateway.server import start_gateway

    started: list[Stack] = []

    def make(addresses: dict[str, str], **overrides: Any) -> Stack:
        cfg = isolated_cfg(base_cfg, tmp_path / f"gw-{len(started)}", **overrides)
        cfg = dataclasses.replace(cfg, connectors={
            p: dataclasses.replace(c, address=addresses.get(p, c.address))
            for p, c in cfg.connectors.items()})
        running = loop.run(start_gateway(cfg, listen="127.0.0.1:0"))
        issuer = DevIssuer.load(cfg.dev_issuer_dir, issuer=cfg.issuer, audience=cfg.audience)
        s = Stack(loop, cfg, running, {}, issuer)
        started.append(s)
        return s

    yield make
    for s in reversed(started):
        s.close(owned=())
