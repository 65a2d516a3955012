"""The standard stack of decorators around one upstream, in its one right order."""

from __future__ import annotations

from collections.abc import Callable

from mirror.coordination.metadata import MetadataStore
from mirror.metrics import METRICS, MetricsRegistry
from mirror.registryhttp.client import DistributionClient
from mirror.upstream.api import Upstream
from mirror.upstream.breaker import BreakerUpstream, CircuitBreaker
from mirror.upstream.coalescing import CoalescingUpstream
from mirror.upstream.metered import MeteredUpstream, UpstreamMetrics
from mirror.upstream.negative import NegativeCache
from mirror.upstream.offline import OfflineUpstream
from mirror.upstream.registry import RegistryUpstream


def upstream_stack(
    client: DistributionClient,
    *,
    prefix: str,
    metadata: MetadataStore,
    negative_ttl: float = 30.0,
    offline: bool = False,
    breaker: CircuitBreaker | None = None,
    metrics: MetricsRegistry = METRICS,
    on_breaker: Callable[[str], None] | None = None,
) -> Upstream:
    """`client` wrapped, outermost first, in:

    coalescing (identical requests share one, and so one negative-cache lookup),
    the negative cache (a remembered 404 costs nothing, even when offline or broken),
    the offline switch and the breaker (refused requests are not sent, so not counted),
    the metrics (what was actually sent), and the client itself.

    Closing the stack closes the client. `on_breaker` also hears the breaker's state
    (``closed``, ``open``, ``half_open``; the health report's upstream state).
    """
    families = UpstreamMetrics(metrics)
    name = client.name

    def breaker_state(state: str) -> None:
        families.breaker_state(name, state)
        if on_breaker is not None:
            on_breaker(state)

    breaker_state("closed")
    upstream: Upstream = MeteredUpstream(RegistryUpstream(client), families)
    upstream = BreakerUpstream(upstream, breaker or CircuitBreaker(), on_state=breaker_state)
    upstream = OfflineUpstream(upstream, offline=offline)
    upstream = NegativeCache(upstream, metadata, prefix=prefix, ttl=negative_ttl)
    return CoalescingUpstream(upstream)
