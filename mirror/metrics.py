"""A small Prometheus metrics registry (text exposition format 0.0.4).

Counters and gauges with fixed label names, and a histogram with fixed buckets. Updates
are plain attribute arithmetic on dicts (no locks needed: the server runs one event loop
per process). A process-wide default registry, `METRICS`, is what the modules below use;
tests may create their own.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable
from typing import TypeVar


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: tuple[str, ...], values: tuple[str, ...], extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


class _Metric:
    kind = "untyped"

    def __init__(self, name: str, help_text: str, labels: Iterable[str] = ()) -> None:
        self.name = name
        self.help = help_text
        self.label_names = tuple(labels)
        self.values: dict[tuple[str, ...], float] = {}

    def _key(self, labels: tuple[str, ...]) -> tuple[str, ...]:
        if len(labels) != len(self.label_names):
            raise ValueError(f"{self.name} takes labels {self.label_names}, got {labels}")
        return labels

    def get(self, *labels: str) -> float:
        return self.values.get(labels, 0.0)

    def samples(self) -> Iterable[str]:
        for labels, value in sorted(self.values.items()):
            yield f"{self.name}{_labels(self.label_names, labels)} {_number(value)}"


class Counter(_Metric):
    kind = "counter"

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        key = labels if labels in self.values else self._key(labels)
        self.values[key] = self.values.get(key, 0.0) + amount


class Gauge(_Metric):
    kind = "gauge"

    def __init__(
        self,
        name: str,
        help_text: str,
        labels: Iterable[str] = (),
        callback: Callable[[], Iterable[tuple[tuple[str, ...], float]]] | None = None,
    ) -> None:
        super().__init__(name, help_text, labels)
        self.callback = callback

    def set(self, *labels: str, value: float) -> None:
        self.values[self._key(labels)] = value

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        key = self._key(labels)
        self.values[key] = self.values.get(key, 0.0) + amount

    def dec(self, *labels: str, amount: float = 1.0) -> None:
        self.inc(*labels, amount=-amount)

    def samples(self) -> Iterable[str]:
        if self.callback is not None:
            for labels, value in self.callback():
                self.values[self._key(labels)] = value
        return super().samples()


class Histogram(_Metric):
    kind = "histogram"
    DEFAULT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

    def __init__(
        self,
        name: str,
        help_text: str,
        labels: Iterable[str] = (),
        buckets: Iterable[float] = DEFAULT_BUCKETS,
    ) -> None:
        super().__init__(name, help_text, labels)
        self.buckets = tuple(sorted(buckets))
        self.counts: dict[tuple[str, ...], list[int]] = {}
        self.sums: dict[tuple[str, ...], float] = {}

    def observe(self, *labels: str, value: float) -> None:
        counts = self.counts.get(labels)
        if counts is None:
            counts = self.counts[self._key(labels)] = [0] * (len(self.buckets) + 1)
        counts[bisect.bisect_left(self.buckets, value)] += 1
        self.sums[labels] = self.sums.get(labels, 0.0) + value

    def get(self, *labels: str) -> float:
        """The number of observations."""
        return float(sum(self.counts.get(labels, ())))

    def samples(self) -> Iterable[str]:
        for labels, counts in sorted(self.counts.items()):
            running = 0
            for bound, count in zip((*self.buckets, math.inf), counts, strict=True):
                running += count
                le = _labels(self.label_names, labels, f'le="{_number(bound)}"')
                yield f"{self.name}_bucket{le} {running}"
            plain = _labels(self.label_names, labels)
            yield f"{self.name}_sum{plain} {_number(self.sums[labels])}"
            yield f"{self.name}_count{plain} {running}"


M = TypeVar("M", bound="_Metric")


class MetricsRegistry:
    def __init__(self) -> None:
        self._metrics: dict[str, _Metric] = {}

    def _add(self, metric: M) -> M:
        existing = self._metrics.get(metric.name)
        if existing is not None:
            if type(existing) is not type(metric) or existing.label_names != metric.label_names:
                raise ValueError(f"metric {metric.name} registered twice with another shape")
            assert isinstance(existing, type(metric))
            return existing
        self._metrics[metric.name] = metric
        return metric

    def counter(self, name: str, help_text: str, labels: Iterable[str] = ()) -> Counter:
        return self._add(Counter(name, help_text, labels))

    def gauge(
        self,
        name: str,
        help_text: str,
        labels: Iterable[str] = (),
        callback: Callable[[], Iterable[tuple[tuple[str, ...], float]]] | None = None,
    ) -> Gauge:
        return self._add(Gauge(name, help_text, labels, callback))

    def histogram(
        self,
        name: str,
        help_text: str,
        labels: Iterable[str] = (),
        buckets: Iterable[float] = Histogram.DEFAULT_BUCKETS,
    ) -> Histogram:
        return self._add(Histogram(name, help_text, labels, buckets))

    def render(self) -> str:
        lines: list[str] = []
        for metric in self._metrics.values():
            lines.append(f"# HELP {metric.name} {_escape(metric.help)}")
            lines.append(f"# TYPE {metric.name} {metric.kind}")
            lines.extend(metric.samples())
        return "\n".join(lines) + "\n"


METRICS = MetricsRegistry()
