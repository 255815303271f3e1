"""Small helpers shared by the benchmarks in ``bench/``: latency summaries, tables, machine info.

Import from a bench script run as ``python bench/NAME.py`` (``bench/`` is then on ``sys.path``)::

    from _common import LatencySummary, format_table, machine_description
"""

from __future__ import annotations

import math
import os
import platform
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LatencySummary", "format_table", "load_average", "machine_description", "make_ids",
           "percentile", "widen_limits"]


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


def load_average() -> str:
    """``load 1.23 0.98 0.75`` (1, 5 and 15 minutes): how busy the shared cores were."""
    return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def make_ids(n: int, start: int = 0) -> list[str]:
    """``n`` distinct valid GB 11643-1999 ids, the ``start``-th onwards of a fixed sequence.

    Id k: region 3204 and k mod 97, birth date 1940-01-01 plus k // 1000 days in 28-day months
    of a 12-month year (wrapping after 80 years), sequence k mod 1000, then the check character.
    Built with numpy (4M ids in about 2 s).
    """
    import numpy as np

    k = np.arange(start, start + n, dtype=np.int64)
    day, seq = np.divmod(k, 1000)
    year, rest = np.divmod(day, 336)
    month, dom = np.divmod(rest, 28)
    fields = [(3204, 4), (k % 97, 2), (1940 + year % 80, 4), (month + 1, 2), (dom + 1, 2),
              (seq, 3)]
    digits = np.concatenate([(np.asarray(v, dtype=np.int64).reshape(-1, 1)
                              // 10 ** np.arange(w - 1, -1, -1)) % 10
                             * np.ones((n, 1), dtype=np.int64) for v, w in fields], axis=1)
    weights = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
    check = np.frombuffer(b"10X98765432", dtype=np.uint8)[(digits @ weights) % 11]
    rows = np.concatenate([(digits + 48).astype(np.uint8), check.reshape(-1, 1)], axis=1)
    text = rows.tobytes().decode("ascii")
    return [text[i:i + 18] for i in range(0, 18 * n, 18)]


def fresh_audit_log(workdir: Path) -> None:
    """Start a reused bench workdir with an empty audit log (and witnesses that saw none).

    Each 2^20-subject compute appends a 70 MB entry, and a gateway rebuilds its tree from
    every entry at start-up: without this, each run would start slower than the last.
    """
    for name in ("audit.db", "audit.db-wal", "audit.db-shm"):
        (workdir / name).unlink(missing_ok=True)
    for state in (workdir / "state").glob("witness-*.json"):
        state.unlink()


def widen_limits(agreement: Path, subjects: int) -> None:
    """Raise an agreement file's request, rate and daily limits for a bench of ``subjects``.

    Benches write their own copy of the policies; the shipped limits are for people, not for
    2^20-subject runs repeated within a minute.
    """
    big = max(subjects, 1 << 22) * 16
    text = agreement.read_text()
    for key, value in (("max_subjects_per_request", subjects), ("requests_per_minute", 1000000),
                       ("subjects_per_day", big), ("queries_per_subject_per_day", big)):
        text = re.sub(rf"{key}: \d+", f"{key}: {value}", text)
    agreement.write_text(text)
