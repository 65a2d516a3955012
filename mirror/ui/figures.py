"""The cache's figures, from the process's metrics (every worker's, added up).

`MetricsRegistry.render` is what a Prometheus scrape reads, with several workers the sum
of all of them; the figures are read back from that text, so the dashboard shows what
the scrape shows and never a single worker's share.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from mirror.metrics import MetricsRegistry
from mirror.ui.catalog import UpstreamInfo

BREAKER_STATES = {0: "closed", 1: "half-open", 2: "open"}


@dataclass(frozen=True, slots=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


class Samples:
    """Parsed samples, looked up by name and labels."""

    def __init__(self, samples: Iterable[Sample]) -> None:
        self.all = list(samples)
        self._by_name: dict[str, list[Sample]] = {}
        for sample in self.all:
            self._by_name.setdefault(sample.name, []).append(sample)

    @classmethod
    def from_registry(cls, metrics: MetricsRegistry) -> Samples:
        text = metrics.render().decode()
        found = [
            Sample(s.name, dict(s.labels), float(s.value))
            for family in text_string_to_metric_families(text)
            for s in family.samples
        ]
        return cls(found)

    def total(self, name: str, **labels: str) -> float:
        """The sum of `name`'s samples whose labels include `labels`."""
        return sum(
            s.value
            for s in self._by_name.get(name, ())
            if all(s.labels.get(k) == v for k, v in labels.items())
        )

    def value(self, name: str, **labels: str) -> float | None:
        """The one sample of `name` with exactly these labels' values, None if absent."""
        for s in self._by_name.get(name, ()):
            if all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
        return None

    def present(self, name: str) -> bool:
        return name in self._by_name

    def maybe_total(self, name: str) -> float | None:
        """The sum of `name`'s samples, None when the metric does not exist here."""
        return self.total(name) if self.present(name) else None


@dataclass(frozen=True, slots=True)
class UpstreamFigures:
    name: str
    url: str
    breaker: str  # closed, half-open, open
    ratelimit_remaining: float | None
    requests: float
    errors: float
    fetched: float  # blob bytes received from it
    saved: float  # blob bytes of its cache repositories sent from the store
    streamed: float  # blob bytes sent to clients while downloading from it

    @property
    def reachable(self) -> bool:
        return self.breaker == "closed"


@dataclass(frozen=True, slots=True)
class EndpointFigures:
    name: str
    pending: float
    queued: float
    delivered: float
    failed: float
    dropped: float


@dataclass(frozen=True, slots=True)
class Lifecycle:
    """Size cap, eviction and garbage collection, where those jobs run (None: absent)."""

    size: float | None  # bytes of cached upstream content
    cap: float | None  # cache.maxsize; 0: no cap
    evictions: float | None
    evicted: float | None  # bytes
    gc_runs: float | None
    gc_removed: float | None
    gc_freed: float | None  # bytes

    @property
    def any(self) -> bool:
        return any(
            v is not None
            for v in (self.size, self.cap, self.evictions, self.gc_runs, self.gc_freed)
        )

    @property
    def usage(self) -> float | None:
        """The share of the cap in use, when there is a cap."""
        if self.size is None or not self.cap:
            return None
        return self.size / self.cap


def _lifecycle(samples: Samples) -> Lifecycle:
    return Lifecycle(
        size=samples.maybe_total("mirror_cache_size_bytes"),
        cap=samples.maybe_total("mirror_cache_max_bytes"),
        evictions=samples.maybe_total("mirror_evictions_total"),
        evicted=samples.maybe_total("mirror_evicted_bytes_total"),
        gc_runs=samples.maybe_total("mirror_gc_runs_total"),
        gc_removed=samples.maybe_total("mirror_gc_removed_total"),
        gc_freed=samples.maybe_total("mirror_gc_freed_bytes_total"),
    )


@dataclass(frozen=True, slots=True)
class CacheFigures:
    hits: dict[str, float]  # by kind (blob, manifest)
    misses: dict[str, float]
    stale: float
    revalidations: float
    in_flight: float
    coalesced: float
    served_store: float  # every repository's blob bytes from the store
    served_download: float
    upstreams: list[UpstreamFigures]
    endpoints: list[EndpointFigures]
    lifecycle: Lifecycle

    def hit_ratio(self, kind: str | None = None) -> float | None:
        kinds = [kind] if kind else sorted(set(self.hits) | set(self.misses))
        hits = sum(self.hits.get(k, 0.0) for k in kinds)
        misses = sum(self.misses.get(k, 0.0) for k in kinds)
        return hits / (hits + misses) if hits + misses else None

    @property
    def saved(self) -> float:
        return sum(u.saved for u in self.upstreams)

    @property
    def fetched(self) -> float:
        return sum(u.fetched for u in self.upstreams)

    @property
    def byte_ratio(self) -> float | None:
        """The share of cache repositories' blob bytes that did not come from upstream."""
        both = self.saved + self.fetched
        return self.saved / both if both else None


def _by_label(samples: Samples, name: str, label: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for s in samples.all:
        if s.name == name:
            key = s.labels.get(label, "")
            found[key] = found.get(key, 0.0) + s.value
    return found


def cache_figures(samples: Samples, upstreams: Sequence[UpstreamInfo]) -> CacheFigures:
    rows = []
    for upstream in upstreams:
        state = samples.value("mirror_upstream_breaker_state", upstream=upstream.name)
        rows.append(
            UpstreamFigures(
                name=upstream.name,
                url=upstream.url,
                breaker=BREAKER_STATES.get(int(state or 0), "open"),
                ratelimit_remaining=samples.value(
                    "mirror_upstream_ratelimit_remaining", upstream=upstream.name
                ),
                requests=samples.total("mirror_upstream_requests_total", upstream=upstream.name),
                errors=samples.total("mirror_upstream_errors_total", upstream=upstream.name),
                fetched=samples.total("mirror_upstream_blob_bytes_total", upstream=upstream.name),
                saved=samples.total(
                    "mirror_served_bytes_total", source="store", upstream=upstream.name
                ),
                streamed=samples.total(
                    "mirror_served_bytes_total", source="download", upstream=upstream.name
                ),
            )
        )
    endpoints = sorted(
        set(_by_label(samples, "mirror_notifications_queued_total", "endpoint"))
        | set(_by_label(samples, "mirror_notifications_pending", "endpoint"))
    )
    return CacheFigures(
        hits=_by_label(samples, "mirror_cache_hits_total", "kind"),
        misses=_by_label(samples, "mirror_cache_misses_total", "kind"),
        stale=samples.total("mirror_stale_serves_total"),
        revalidations=samples.total("mirror_tag_revalidations_total"),
        in_flight=samples.total("mirror_fills_active"),
        coalesced=samples.total("mirror_coalesced_waiters_total"),
        served_store=samples.total("mirror_served_bytes_total", source="store"),
        served_download=samples.total("mirror_served_bytes_total", source="download"),
        upstreams=rows,
        endpoints=[
            EndpointFigures(
                name=endpoint,
                pending=samples.total("mirror_notifications_pending", endpoint=endpoint),
                queued=samples.total("mirror_notifications_queued_total", endpoint=endpoint),
                delivered=samples.total("mirror_notifications_delivered_total", endpoint=endpoint),
                failed=samples.total("mirror_notifications_failed_total", endpoint=endpoint),
                dropped=samples.total("mirror_notifications_dropped_total", endpoint=endpoint),
            )
            for endpoint in endpoints
        ],
        lifecycle=_lifecycle(samples),
    )
