"""Prometheus metrics: a tiny thread-safe registry rendering the text exposition format 0.0.4.

No third-party client: counters, histograms and callback gauges are all the gateway needs.
Label values name *kinds* of things (an RPC kind, a decision, an agreement id, a partner id,
a connector method) and never a requester, a subject id or a released value; the label names
are fixed when a metric is declared and every observation must give exactly those.

The process-wide metrics live in :data:`REGISTRY`; per-gateway gauges (the audit queue depth)
are :class:`GaugeFunc` objects the admin endpoint renders next to it.
"""

from __future__ import annotations

import bisect
import math
import threading
import time
from collections.abc import Callable, Sequence
from types import TracebackType

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: The Prometheus client's default latency buckets, in seconds.
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
                   10.0)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


class _Metric:
    kind = ""

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        self.name, self.help, self.label_names = name, help_text, tuple(labels)
        self._lock = threading.Lock()

    def _key(self, labels: dict[str, str]) -> tuple[str, ...]:
        try:
            if len(labels) == len(self.label_names):
                return tuple([str(labels[n]) for n in self.label_names])
        except KeyError:
            pass
        raise ValueError(f"{self.name} labels: got {sorted(labels)}, "
                         f"want {sorted(self.label_names)}")

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]

    def render(self) -> list[str]:  # pragma: no cover - every subclass overrides
        raise NotImplementedError


class Counter(_Metric):
    kind = "counter"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, labels)
        self._values: dict[tuple[str, ...], float] = {}

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        if amount < 0:
            raise ValueError(f"{self.name}: got increment {amount}, want >= 0")
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: str) -> float:
        with self._lock:
            return self._values.get(self._key(labels), 0.0)

    def render(self) -> list[str]:
        with self._lock:
            items = sorted(self._values.items())
        return self.header() + [f"{self.name}{_labels(self.label_names, k)} {_number(v)}"
                                for k, v in items]


class Histogram(_Metric):
    kind = "histogram"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = (),
                 buckets: Sequence[float] = DEFAULT_BUCKETS) -> None:
        super().__init__(name, help_text, labels)
        if list(buckets) != sorted(set(buckets)) or not buckets:
            raise ValueError(f"{name} buckets: got {list(buckets)}, want strictly increasing")
        self.buckets = tuple(float(b) for b in buckets)
        # per label set: counts per bucket (non-cumulative, last one +Inf), sum
        self._series: dict[tuple[str, ...], tuple[list[int], list[float]]] = {}

    def observe(self, seconds: float, **labels: str) -> None:
        self._observe(seconds, self._key(labels))

    def _observe(self, seconds: float, key: tuple[str, ...]) -> None:
        slot = bisect.bisect_left(self.buckets, seconds)  # the first bucket with seconds <= bound
        with self._lock:
            counts, total = self._series.setdefault(
                key, ([0] * (len(self.buckets) + 1), [0.0]))
            counts[slot] += 1
            total[0] += seconds

    def time(self, **labels: str) -> _Timer:
        """Observe the wall time of the ``with`` body, whether it returns or raises."""
        return _Timer(self, self._key(labels))  # a wrong label set fails before the body runs

    def count(self, **labels: str) -> int:
        with self._lock:
            series = self._series.get(self._key(labels))
            return sum(series[0]) if series else 0

    def render(self) -> list[str]:
        lines = self.header()
        with self._lock:
            items = sorted((k, (list(c), s[0])) for k, (c, s) in self._series.items())
        for key, (counts, total) in items:
            running = 0
            for bound, n in zip((*self.buckets, math.inf), counts, strict=True):
                running += n
                le = _labels(self.label_names, key, f'le="{_number(bound)}"')
                lines.append(f"{self.name}_bucket{le} {running}")
            plain = _labels(self.label_names, key)
            lines.append(f"{self.name}_sum{plain} {_number(total)}")
            lines.append(f"{self.name}_count{plain} {running}")
        return lines


class _Timer:
    """The context manager of :meth:`Histogram.time` (a class: cheaper than a generator)."""

    __slots__ = ("_histogram", "_key", "_start")

    def __init__(self, histogram: Histogram, key: tuple[str, ...]) -> None:
        self._histogram, self._key, self._start = histogram, key, 0.0

    def __enter__(self) -> None:
        self._start = time.perf_counter()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._histogram._observe(time.perf_counter() - self._start, self._key)


class GaugeFunc(_Metric):
    """A label-less gauge whose value is read at scrape time."""

    kind = "gauge"

    def __init__(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        super().__init__(name, help_text)
        self._read = read

    def render(self) -> list[str]:
        return self.header() + [f"{self.name} {_number(float(self._read()))}"]


class Registry:
    """Metrics by name; declaring one name twice is an error."""

    def __init__(self) -> None:
        self._metrics: dict[str, _Metric] = {}
        self._lock = threading.Lock()

    def register(self, metric: _Metric) -> None:
        with self._lock:
            if metric.name in self._metrics:
                raise ValueError(f"metric {metric.name}: already registered")
            self._metrics[metric.name] = metric

    def counter(self, name: str, help_text: str, labels: Sequence[str] = ()) -> Counter:
        metric = Counter(name, help_text, labels)
        self.register(metric)
        return metric

    def histogram(self, name: str, help_text: str, labels: Sequence[str] = (),
                  buckets: Sequence[float] = DEFAULT_BUCKETS) -> Histogram:
        metric = Histogram(name, help_text, labels, buckets)
        self.register(metric)
        return metric

    def render(self, extra: Sequence[_Metric] = ()) -> str:
        """The text exposition of every metric here plus ``extra``, sorted by name."""
        with self._lock:
            metrics = list(self._metrics.values())
        lines: list[str] = []
        for metric in sorted([*metrics, *extra], key=lambda m: m.name):
            lines.extend(metric.render())
        return "\n".join(lines) + "\n"


REGISTRY = Registry()
DECISIONS = REGISTRY.counter(
    "pgw_decisions_total", "Audited decisions by RPC kind, outcome and agreement id(s).",
    ("kind", "decision", "agreement"))
CONNECTOR_CALL_SECONDS = REGISTRY.histogram(
    "pgw_connector_call_seconds", "Latency of gateway calls to a partner connector.",
    ("partner", "method"))
CONNECTOR_BATCH_ITEMS = REGISTRY.histogram(
    "pgw_connector_batch_items",
    "Release specs per gateway Fetch call to a partner connector (1: a plain Fetch, more: a "
    "coalesced FetchBatch).", ("partner",), buckets=(1, 2, 4, 8, 16, 32, 64))
AUDIT_APPEND_SECONDS = REGISTRY.histogram(
    "pgw_audit_append_seconds", "Latency of a durable, checkpointed audit append.")


def agreement_label(ids: Sequence[str]) -> str:
    """The ``agreement`` label: the distinct agreement ids, sorted and comma-joined."""
    return ",".join(sorted(set(ids))) or "none"
