"""``pgw audit --help`` and each action's help: exit 0 and name every option."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pgw_officer_harness import cli

REMOTE = ["--config", "--token", "--org", "--role", "--as", "--gateway"]
ACTIONS = {
    "verify": ["--config", "--since", "pgw audit export", "first bad index"],
    "verify-receipt": ["--config", "FILE", "inclusion proof"],
    "checkpoint": [*REMOTE, "--save"],
    "search": [*REMOTE, "--requester-org", "--purpose", "--partner", "--decision", "--from",
               "--to", "--subject", "--limit"],
    "export": [*REMOTE, "--start", "--end", "--out"],
    "tail": [*REMOTE, "-n", "--follow"],
}


def test_audit_help_lists_every_action(capsys) -> None:  # type: ignore[no-untyped-def]
    rc, out, err = cli(capsys, "audit", "--help")
    assert (rc, err) == (0, "")
    for action in ACTIONS:
        assert action in out


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_each_action_help_names_its_options(capsys, action: str) -> None:  # type: ignore[no-untyped-def]
    rc, out, err = cli(capsys, "audit", action, "--help")
    assert (rc, err) == (0, "")
    assert out.startswith(f"usage: pgw audit {action}")
    for option in ACTIONS[action]:
        assert option in " ".join(out.split()), option


def test_python_m_gateway_cli_runs_the_same_command() -> None:
    done = subprocess.run([sys.executable, "-m", "gateway.cli", "audit", "verify", "--help"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "--since" in done.stdout


def test_an_unknown_action_is_a_usage_error(capsys) -> None:  # type: ignore[no-untyped-def]
    rc, _, err = cli(capsys, "audit", "shred")
    assert rc == 2 and "invalid choice" in err
