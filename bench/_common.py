"""Small helpers shared by the benchmarks in ``bench/``: latency summaries, tables, machine info.

Import from a bench script run as ``python bench/NAME.py`` (``bench/`` is then on ``sys.path``)::

    from _common import LatencySummary, format_table, machine_description
"""

from __future__ import annotations

import math
import os
import platform
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["LatencySummary", "format_table", "machine_description", "percentile"]


def percentile(ordered: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of an already sorted sequence, nearest-rank method."""
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass(frozen=True)
class LatencySummary:
    """Throughput and latency percentiles of the calls that completed in a measured window."""

    calls: int
    errors: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    @classmethod
    def of(cls, latencies_s: Sequence[float], seconds: float, errors: int = 0) -> LatencySummary:
        """Summarise per-call latencies (seconds) over a window of ``seconds``."""
        ordered = sorted(latencies_s)
        return cls(calls=len(ordered), errors=errors, seconds=seconds,
                   p50_ms=percentile(ordered, 50) * 1e3, p90_ms=percentile(ordered, 90) * 1e3,
                   p99_ms=percentile(ordered, 99) * 1e3,
                   max_ms=(ordered[-1] * 1e3) if ordered else math.nan)

    @property
    def throughput(self) -> float:
        """Successful calls per second."""
        return self.calls / self.seconds if self.seconds > 0 else math.nan

    @property
    def tail_ratio(self) -> float:
        """p99 / p50: how much worse the slowest 1% is than the typical call."""
        return self.p99_ms / self.p50_ms if self.p50_ms > 0 else math.nan


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]], *,
                 left: int = 1) -> str:
    """A plain-text table: the first ``left`` columns left-aligned, the others right-aligned."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if i < left else c.rjust(w)
                         for i, (c, w) in enumerate(zip(row, widths, strict=True))).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


def machine_description() -> str:
    """``N cores, <CPU model>, Python X.Y.Z, <OS>``, from ``os.cpu_count`` and ``lscpu``."""
    model = platform.processor() or "unknown CPU"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=5,
                             check=False).stdout
        for row in out.splitlines():
            key, _, value = row.partition(":")
            if key.strip() == "Model name":
                model = value.strip()
                break
    except (OSError, subprocess.SubprocessError):
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (f"{cores} cores, {model}, Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}")
