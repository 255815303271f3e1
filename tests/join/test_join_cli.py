"""``pgw join`` CSV handling and the demo hook, against the real stack."""

from __future__ import annotations

from pathlib import Path

import pytest
from pgw_join_support import fresh_ids

from gateway.cli._common import CliError
from gateway.cli._join import read_items, run_join_scenario


def test_bad_csv_line_is_named_never_the_id(tmp_path: Path) -> None:
    good = fresh_ids(2, 1)
    bad = good[0][:17] + ("0" if good[0][17] != "0" else "1")
    path = tmp_path / "claimants.csv"
    path.write_text("name,id\na," + good[0] + "\nb," + bad + "\nc," + good[1] + "\n")
    with pytest.raises(CliError) as info:
        read_items(path, "id")
    assert "claimants.csv:3" in str(info.value) and bad not in str(info.value)


def test_missing_column_is_named(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("pid\n" + fresh_ids(1, 2)[0] + "\n")
    with pytest.raises(CliError, match="no column 'id'"):
        read_items(path, "id")


def test_demo_hook_runs_the_three_outputs(stack, run) -> None:
    lines: list[str] = []
    run(run_join_scenario(stack.cfg, stack.address, lines.append))
    text = "\n".join(lines)
    assert "membership (ecdh-psi)" in text and "cardinality only" in text
    assert "intersection-sum" in text and "UNEXPECTED" not in text
