"""Fixtures for the integration tests: the shared stack, raw data and isolated extra stacks.

The helpers live in ``_harness.py``, registered by ``tests/conftest.py`` as the module
``pgw_it_harness`` (pytest runs with ``--import-mode=importlib`` and ``tests/`` is not a
package), so test modules can write ``from pgw_it_harness import ...``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from pgw_it_harness import (  # noqa: E402 - registered by tests/conftest.py
    PEOPLE,
    SEED,
    LoopThread,
    RawData,
    Stack,
    isolated_cfg,
    start_stack,
)

from gateway.config import Config, load_config  # noqa: E402
from gateway.workdir import init_workdir  # noqa: E402


@pytest.fixture(scope="session")
def loop() -> Iterator[LoopThread]:
    lt = LoopThread()
    yield lt
    lt.close()


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pgw")
    init_workdir(root, people=PEOPLE, seed=SEED)
    return root


@pytest.fixture(scope="session")
def base_cfg(workdir: Path) -> Config:
    return load_config(workdir / "pgw.toml")


@pytest.fixture(scope="session")
def raw(base_cfg: Config) -> RawData:
    return RawData(base_cfg)


@pytest.fixture(scope="session")
def stack(loop: LoopThread, base_cfg: Config) -> Iterator[Stack]:
    s = start_stack(loop, base_cfg)
    yield s
    s.close()


@pytest.fixture
def make_stack(loop: LoopThread, base_cfg: Config, tmp_path: Path,
               monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Stack]]:
    """Start an isolated extra stack; doubles are patched in only while it starts.

    ``connector_cls``: a ``ConnectorService`` subclass per partner (fault injection);
    ``source_wrap``: a callable per partner wrapping the real ``DataSource``;
    ``policies``: a policy directory for both the gateway and the connectors;
    ``partner_policies``: a partner's own copy of the agreements, where it differs.
    """
    started: list[Stack] = []

    def make(*, connector_cls: Mapping[str, type] | None = None,
             source_wrap: Mapping[str, Callable[[Any], Any]] | None = None,
             policies: Path | None = None,
             partner_policies: Mapping[str, Path] | None = None, **overrides: Any) -> Stack:
        import connectors.registry
        import gateway.server

        cfg = isolated_cfg(base_cfg, tmp_path / f"stack-{len(started)}", policies=policies,
                           **overrides)
        if partner_policies:
            cfg = dataclasses.replace(cfg, connectors={
                p: dataclasses.replace(c, policies=partner_policies.get(p, c.policies))
                for p, c in cfg.connectors.items()})
        real_cls = gateway.server.ConnectorService
        real_open = connectors.registry.open_source
        classes = dict(connector_cls or {})
        wraps = dict(source_wrap or {})

        # Patched once; the current partner is read from the source's schema at build time.
        def pick_cls(source: Any, *args: Any, **kw: Any) -> Any:
            cls = classes.get(source.schema.partner, real_cls)
            return cls(source, *args, **kw)

        def open_wrapped(partner: str, database: Path) -> Any:
            src = real_open(partner, database)
            return wraps[partner](src) if partner in wraps else src

        with monkeypatch.context() as m:
            m.setattr(gateway.server, "ConnectorService", pick_cls)
            m.setattr(connectors.registry, "open_source", open_wrapped)
            s = start_stack(loop, cfg)
        started.append(s)
        return s

    yield make
    for s in reversed(started):
        s.close()


