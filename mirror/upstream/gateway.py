"""One upstream as the cache uses it: client, circuit breaker, offline switch, metrics.

Upstream failures stay `UpstreamError`s inside the cache layer; `to_domain` turns them
into what a client is told (BlobUnknown/ManifestUnknown, TooManyRequests, Unavailable).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from mirror.errors import (
    BlobUnknown,
    ManifestUnknown,
    RegistryError,
    TooManyRequests,
    Unavailable,
)
from mirror.metrics import METRICS, MetricsRegistry
from mirror.registryhttp.client import DistributionClient
from mirror.registryhttp.errors import (
    UpstreamError,
    UpstreamNotFound,
    UpstreamRateLimited,
    UpstreamUnavailable,
)
from mirror.upstream.breaker import STATE_VALUES, CircuitBreaker
from mirror.upstream.routing import UpstreamRoute

T = TypeVar("T")


class UpstreamMetrics:
    def __init__(self, metrics: MetricsRegistry) -> None:
        self.errors = metrics.counter(
            "mirror_upstream_errors_total", "Failed upstream requests", ("upstream", "status")
        )
        self.requests = metrics.counter(
            "mirror_upstream_requests_total", "Upstream requests by operation", ("upstream", "op")
        )
        self.breaker = metrics.gauge(
            "mirror_upstream_breaker_state",
            "Circuit breaker per upstream: 0 closed, 1 half-open, 2 open",
            ("upstream",),
        )
        self.ratelimit = metrics.gauge(
            "mirror_upstream_ratelimit_remaining",
            "Pulls left in the upstream's rate-limit window (Docker Hub ratelimit-remaining)",
            ("upstream",),
        )


class UpstreamGateway:
    def __init__(
        self,
        route: UpstreamRoute,
        client: DistributionClient,
        *,
        freshness: float = 300.0,
        offline: bool = False,
        breaker: CircuitBreaker | None = None,
        metrics: MetricsRegistry = METRICS,
    ) -> None:
        self.route = route
        self.name = route.name
        self.client = client
        self.freshness = freshness
        self.offline = offline
        self.breaker = breaker or CircuitBreaker()
        self._metrics = UpstreamMetrics(metrics)
        self._metrics.breaker.set(self.name, value=0.0)

    async def call(self, op: str, fn: Callable[[], Awaitable[T]]) -> T:
        """Run one upstream request under the offline switch and the breaker."""
        if self.offline:
            raise UpstreamUnavailable(f"upstream {self.name} is offline (cache only)")
        if not self.breaker.allow():
            raise UpstreamUnavailable(
                f"upstream {self.name} failed repeatedly; not asking it for a while"
            )
        self._metrics.requests.inc(self.name, op)
        try:
            result = await fn()
        except UpstreamNotFound:
            self.breaker.release()
            raise
        except UpstreamRateLimited:
            # The upstream is up; it just refuses us for now.
            self.breaker.release()
            self._metrics.errors.inc(self.name, "429")
            raise
        except UpstreamError as exc:
            self.breaker.failure()
            self._metrics.errors.inc(self.name, str(exc.status or "network"))
            raise
        except BaseException:
            self.breaker.release()
            raise
        else:
            self.breaker.success()
        finally:
            self._metrics.breaker.set(self.name, value=STATE_VALUES[self.breaker.state])
            limit = self.client.ratelimit
            if limit is not None and limit.remaining is not None:
                self._metrics.ratelimit.set(self.name, value=float(limit.remaining))
        return result

    def warning(self, exc: UpstreamError) -> str:
        """The Warning text for content served from cache because of `exc`."""
        return f"upstream {self.name} unavailable ({exc}); serving cached content"

    def to_domain(self, exc: UpstreamError, what: str, *, blob: bool) -> RegistryError:
        if isinstance(exc, UpstreamNotFound):
            unknown = BlobUnknown if blob else ManifestUnknown
            return unknown(f"{what} not found upstream at {self.name}")
        if isinstance(exc, UpstreamRateLimited):
            return TooManyRequests(
                f"upstream {self.name} is rate limiting and {what} is not cached",
                retry_after=exc.retry_after,
            )
        return Unavailable(f"{what} is not cached and upstream {self.name} is unavailable: {exc}")
