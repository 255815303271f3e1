"""Shared by every test directory: the helper modules, registered once, and the event loop.

Pytest runs with ``--import-mode=importlib`` and ``tests/`` is not a package, so the helper
files are registered here under module names, before any test directory's conftest imports
them (``from pgw_it_harness import ...``). ``pgw_join_harness`` is the integration harness
again, as a module of its own: the join tests keep their own copy of its module state.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_TESTS = Path(__file__).resolve().parent
_HELPERS = {
    "pgw_it_harness": "integration/_harness.py",
    "pgw_join_harness": "integration/_harness.py",
    "pgw_join_support": "join/_support.py",
    "pgw_compute_harness": "compute/_harness.py",
    "pgw_crash_harness": "crash/_harness.py",
    "pgw_officer_harness": "officer/_harness.py",
    "pgw_hardening_faults": "hardening/_faults.py",
    "pgw_budget_support": "budgets/_support.py",
}
for _name, _relative in _HELPERS.items():
    if _name not in sys.modules:
        _spec = importlib.util.spec_from_file_location(_name, _TESTS / _relative)
        assert _spec is not None and _spec.loader is not None
        _module = importlib.util.module_from_spec(_spec)
        sys.modules[_name] = _module
        _spec.loader.exec_module(_module)

from pgw_it_harness import LoopThread  # noqa: E402


@pytest.fixture(scope="module")
def loop() -> Iterator[LoopThread]:
    """One event loop thread per test module (directories whose stack lives for the whole
    session override this with a session-scoped loop)."""
    lt = LoopThread()
    yield lt
    lt.close()
