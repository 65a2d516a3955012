"""This registry's metrics, on prometheus-client.

A `MetricsRegistry` names counters, gauges and histograms with fixed label names; the
call sites stay one line (``requests.inc(route, method, status)``). Each registry owns a
`prometheus_client.CollectorRegistry`, so tests make their own and read values back with
`get`. `METRICS` is the process's registry, which the composition root hands down.

With several worker processes (`http.workers` > 1) the server sets
``PROMETHEUS_MULTIPROC_DIR`` before the workers start (`mirror.metrics_dir`), which makes
prometheus-client keep every value in a memory-mapped file per process; `render` then
adds up the files of every worker, so one scrape of any worker sees them all. A gauge
declares how workers' values combine (`mode`: ``livesum``, ``livemax``, ``livemin``,
...); the ``live`` modes leave out processes that are gone (`mirror.metrics_dir`
removes their files).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any, Literal, TypeVar

import prometheus_client
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client import values as _values
from prometheus_client.multiprocess import MultiProcessCollector

from mirror.metrics_dir import MULTIPROC_ENV, forget_dead_processes

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DEFAULT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

GaugeMode = Literal["livesum", "livemax", "livemin", "liveall", "sum", "max", "min", "all"]

# The `_created` series double every counter and say nothing a scrape needs.
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]


def multiprocess_dir() -> str | None:
    """The directory the worker processes share values through, when there is one."""
    return os.environ.get(MULTIPROC_ENV) or None


def _values_as_the_environment_says() -> None:
    """prometheus-client picks where values live (memory, or the shared files) when it
    is first imported; a worker forked from a process that had imported it before the
    directory was set would keep memory. Choose again before a metric is made."""
    shared = multiprocess_dir() is not None
    if shared == (_values.ValueClass is _values.MutexValue):
        _values.ValueClass = _values.get_value_class()  # type: ignore[no-untyped-call]


class _Metric:
    kind = "untyped"
    sample_suffix = ""

    def __init__(self, registry: MetricsRegistry, name: str, labels: Iterable[str]) -> None:
        _values_as_the_environment_says()
        self.name = name
        self.label_names = tuple(labels)
        self._registry = registry
        self._children: dict[tuple[str, ...], Any] = {}
        self._metric: Any = None

    def _child(self, labels: tuple[str, ...]) -> Any:
        child = self._children.get(labels)
        if child is None:
            if len(labels) != len(self.label_names):
                raise ValueError(f"{self.name} takes labels {self.label_names}, got {labels}")
            child = self._metric.labels(*labels) if self.label_names else self._metric
            self._children[labels] = child
        return child

    def get(self, *labels: str) -> float:
        """The value this process holds (for tests and diagnostics); 0 when never set."""
        value = self._registry.collectors.get_sample_value(
            self.name + self.sample_suffix, dict(zip(self.label_names, labels, strict=True))
        )
        return 0.0 if value is None else float(value)


class Counter(_Metric):
    kind = "counter"
    sample_suffix = "_total"

    def __init__(
        self, registry: MetricsRegistry, name: str, help_text: str, labels: Iterable[str]
    ) -> None:
        super().__init__(registry, name.removesuffix("_total"), labels)
        self._metric = prometheus_client.Counter(
            self.name, help_text, self.label_names, registry=registry.collectors
        )

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        self._child(labels).inc(amount)


class Gauge(_Metric):
    kind = "gauge"

    def __init__(
        self,
        registry: MetricsRegistry,
        name: str,
        help_text: str,
        labels: Iterable[str],
        mode: GaugeMode,
    ) -> None:
        super().__init__(registry, name, labels)
        self.mode = mode
        self._metric = prometheus_client.Gauge(
            name, help_text, self.label_names, registry=registry.collectors, multiprocess_mode=mode
        )

    def set(self, *labels: str, value: float) -> None:
        self._child(labels).set(value)

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        self._child(labels).inc(amount)

    def dec(self, *labels: str, amount: float = 1.0) -> None:
        self._child(labels).dec(amount)


class Histogram(_Metric):
    kind = "histogram"
    sample_suffix = "_count"
    DEFAULT_BUCKETS = DEFAULT_BUCKETS

    def __init__(
        self,
        registry: MetricsRegistry,
        name: str,
        help_text: str,
        labels: Iterable[str],
        buckets: Iterable[float],
    ) -> None:
        super().__init__(registry, name, labels)
        self.buckets = tuple(sorted(buckets))
        self._metric = prometheus_client.Histogram(
            name, help_text, self.label_names, registry=registry.collectors, buckets=self.buckets
        )

    def observe(self, *labels: str, value: float) -> None:
        self._child(labels).observe(value)


M = TypeVar("M", bound=_Metric)


class MetricsRegistry:
    """Metrics by name; asking again for a name gives the same metric (same shape only)."""

    def __init__(self) -> None:
        self.collectors = CollectorRegistry(auto_describe=True)
        self._metrics: dict[str, _Metric] = {}
        self._before_render: list[Callable[[], None]] = []

    def before_render(self, update: Callable[[], None]) -> None:
        """Have `update` bring figures kept elsewhere up to date before each `render`
        (it must not raise)."""
        self._before_render.append(update)

    def _known(self, name: str, kind: type[M], labels: tuple[str, ...]) -> M | None:
        existing = self._metrics.get(name)
        if existing is None:
            return None
        if type(existing) is not kind or existing.label_names != labels:
            raise ValueError(f"metric {name} registered twice with another shape")
        assert isinstance(existing, kind)
        return existing

    def counter(self, name: str, help_text: str, labels: Iterable[str] = ()) -> Counter:
        labels = tuple(labels)
        found = self._known(name, Counter, labels)
        if found is None:
            found = self._metrics[name] = Counter(self, name, help_text, labels)
        return found

    def gauge(
        self,
        name: str,
        help_text: str,
        labels: Iterable[str] = (),
        *,
        mode: GaugeMode = "livesum",
    ) -> Gauge:
        """A gauge; `mode` is how the values of several worker processes combine."""
        labels = tuple(labels)
        found = self._known(name, Gauge, labels)
        if found is None:
            found = self._metrics[name] = Gauge(self, name, help_text, labels, mode)
        return found

    def histogram(
        self,
        name: str,
        help_text: str,
        labels: Iterable[str] = (),
        buckets: Iterable[float] = DEFAULT_BUCKETS,
    ) -> Histogram:
        labels = tuple(labels)
        found = self._known(name, Histogram, labels)
        if found is None:
            found = self._metrics[name] = Histogram(self, name, help_text, labels, buckets)
        return found

    def render(self) -> bytes:
        """The text exposition (format 0.0.4): this registry's values, or with several
        workers every worker's, added up as each metric says."""
        for update in self._before_render:
            update()
        directory = multiprocess_dir()
        if directory is None:
            return generate_latest(self.collectors)
        forget_dead_processes(directory)
        combined = CollectorRegistry()
        MultiProcessCollector(combined, path=directory)  # type: ignore[no-untyped-call]
        return generate_latest(combined)


METRICS = MetricsRegistry()
