"""Fixtures for the security officer's tests: real stacks and audit logs on SQLite and PostgreSQL.

The helpers live in ``_harness.py``, registered by ``tests/conftest.py`` as the module
``pgw_officer_harness`` (pytest runs with ``--import-mode=importlib`` and ``tests/`` is not a
package).

* ``kind``: "sqlite", then "postgres" (marked ``postgres``; skipped without ``PGW_TEST_PG_DSN``).
* ``stack`` (session, one per backend): three connectors and a gateway whose audit log lives on
  that backend, seeded with allowed, refused and explained requests by two organisations.
* ``officer_log`` (function): a copy of that stack's real log, cut at a fully cosigned checkpoint,
  in a fresh store of the same backend, with its own ``pgw.toml``: free to tamper with.
* ``store`` (function): an empty store on the ``kind`` backend.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from pgw_officer_harness import (  # noqa: E402 - registered by tests/conftest.py
    HOUSING,
    LOAN,
    PG_SKIP,
    STATISTICS,
    WITHDRAWAL,
    LoopThread,
    Stack,
    Target,
    _pg_base,
    clone,
    fresh_store,
    snapshot,
    start_stack,
    write_config,
)

from connectors.datagen import load_person_ids  # noqa: E402
from gateway.config import PARTNERS, Config, load_config  # noqa: E402
from gateway.workdir import init_workdir  # noqa: E402

PEOPLE = 300
SEED = 20261125
KINDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@dataclasses.dataclass(frozen=True)
class People:
    """Ids in every partner's data: the ones the seed queries used, and untouched ones."""

    loan: list[str]
    withdrawal: list[str]
    never: list[str]      # never queried by any test


@dataclasses.dataclass(frozen=True)
class OfficerLog:
    """A real, fully cosigned log in its own store, and a config file that points at it."""

    target: Target
    config: Path
    cfg: Config
    size: int
    checkpoint_sizes: list[int]


@pytest.fixture(scope="session")
def loop() -> Iterator[LoopThread]:
    lt = LoopThread()
    yield lt
    lt.close()


@pytest.fixture(scope="session")
def base_cfg(tmp_path_factory: pytest.TempPathFactory) -> Config:
    root = tmp_path_factory.mktemp("pgw-officer")
    init_workdir(root, people=PEOPLE, seed=SEED)
    return load_config(root / "pgw.toml")


@pytest.fixture(scope="session")
def people(base_cfg: Config) -> People:
    ids = [set(load_person_ids(base_cfg.connector(p).database)) for p in PARTNERS]
    in_all = [i for i in load_person_ids(base_cfg.connector("social-security").database)
              if all(i in s for s in ids)]
    assert len(in_all) >= 20
    return People(loan=in_all[:4], withdrawal=in_all[4:6], never=in_all[-3:])


def _skip_without_pg(kind: str) -> None:
    if kind == "postgres" and not _pg_base():
        pytest.skip(PG_SKIP)


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    _skip_without_pg(request.param)
    return str(request.param)


@pytest.fixture
def store(kind: str, tmp_path: Path) -> Iterator[Target]:
    with fresh_store(kind, tmp_path / "stores") as target:
        yield target


@pytest.fixture(scope="session", params=KINDS)
def stack(request: pytest.FixtureRequest, loop: LoopThread, base_cfg: Config, people: People,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    kind = str(request.param)
    _skip_without_pg(kind)
    where = tmp_path_factory.mktemp(f"stack-{kind}")
    with fresh_store(kind, where) as target:
        s = start_stack(loop, base_cfg, kind, target.dsn, where / "state")
        try:
            _seed(s, people)
            yield s
        finally:
            s.close()


def _seed(s: Stack, people: People) -> None:
    """A few decisions of every kind: allowed, refused (field not granted), explained."""
    import grpc

    s.query("loan-eligibility", people.loan[:2], LOAN)
    s.query("withdrawal-review", people.withdrawal, WITHDRAWAL)
    try:
        s.query("loan-eligibility", people.loan[2:3], {"bank": ["card_number"]})
    except grpc.RpcError as err:
        assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    else:
        raise AssertionError("the card number was released")
    s.explain("loan-eligibility", {"education": ["highest_degree"]})
    s.query("statistics", people.loan[3:4], STATISTICS, org=HOUSING)
    s.query("loan-eligibility", people.loan[:1], {"education": ["highest_degree"]})
    s.settle()


@pytest.fixture
def officer_log(stack: Stack, base_cfg: Config, tmp_path: Path) -> Iterator[OfficerLog]:
    cp = stack.settle()
    snap = snapshot(stack.cfg.audit_dsn, cp.size)
    with fresh_store(stack.kind, tmp_path / "stores") as target:
        clone(snap, target.dsn)
        config = write_config(base_cfg, target.dsn)
        yield OfficerLog(target, config, load_config(config), snap.size, sorted(snap.notes))
