"""Failing over from a shared backend (Redis) to an embedded one, and back.

The shared backends raise `BackendUnavailable` when they cannot be reached; nothing else
in this package looks at Redis exceptions. `Failover` remembers whether the primary is
down, logs once per outage, counts answers given by the fallback, and lets the primary
be tried again after a backoff that grows from `min_backoff` to `max_backoff`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from mirror.metrics import METRICS, MetricsRegistry

logger = logging.getLogger("mirror.cache")

T = TypeVar("T")


class BackendUnavailable(Exception):
    """A shared backend could not be reached or did not answer in time.

    Internal to the cache layer: the fallback wrappers catch it, and it never reaches a
    client.
    """


class Failover:
    """The up/down state of one primary backend, shared by the calls that use it.

    While up, every call goes to the primary. The first failure marks it down (one
    warning logged); calls then go to the fallback until the backoff has passed, after
    which calls try the primary again. A failed retry doubles the backoff up to
    `max_backoff`; a success marks it up again (one info line logged).
    """

    def __init__(
        self,
        component: str,
        *,
        min_backoff: float = 1.0,
        max_backoff: float = 5.0,
        metrics: MetricsRegistry = METRICS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < min_backoff <= max_backoff:
            raise ValueError("need 0 < min_backoff <= max_backoff")
        self.component = component
        self._min_backoff = min_backoff
        self._max_backoff = max_backoff
        self._clock = clock
        self._down_since: float | None = None
        self._backoff = min_backoff
        self._retry_at = 0.0
        self._up = metrics.gauge(
            "mirror_redis_up",
            "1 when the shared backend (Redis) answers",
            ("component",),
            mode="livemin",  # 0 when any worker finds it down
        )
        self._fallbacks = metrics.counter(
            "mirror_redis_fallbacks_total",
            "Operations answered by the embedded fallback because Redis was unavailable",
            ("component",),
        )
        self._outages = metrics.counter(
            "mirror_redis_outages_total",
            "Times the shared backend (Redis) was found unavailable after being up",
            ("component",),
        )

    @property
    def down(self) -> bool:
        return self._down_since is not None

    def should_try(self) -> bool:
        """Whether a call should go to the primary now."""
        return self._down_since is None or self._clock() >= self._retry_at

    def succeeded(self) -> None:
        """Record that the primary answered."""
        if self._down_since is not None:
            logger.info(
                "%s: Redis is reachable again after %.1fs; using it",
                self.component,
                self._clock() - self._down_since,
            )
            self._down_since = None
            self._backoff = self._min_backoff
        self._up.set(self.component, value=1.0)

    def failed(self, exc: BaseException) -> None:
        """Record that the primary could not be reached."""
        now = self._clock()
        if self._down_since is None:
            self._down_since = now
            self._backoff = self._min_backoff
            self._outages.inc(self.component)
            logger.warning(
                "%s: Redis is unavailable (%s); answering from the embedded fallback "
                "and retrying every %.0f-%.0fs",
                self.component,
                exc,
                self._min_backoff,
                self._max_backoff,
            )
        elif now >= self._retry_at:
            # A retry after the backoff failed: wait longer before the next one.
            self._backoff = min(self._backoff * 2, self._max_backoff)
            logger.debug("%s: Redis still unavailable: %s", self.component, exc)
        self._retry_at = now + self._backoff
        self._up.set(self.component, value=0.0)

    def fell_back(self) -> None:
        """Count one operation answered by the fallback."""
        self._fallbacks.inc(self.component)

    async def call(
        self,
        primary: Callable[[], Awaitable[T]],
        fallback: Callable[[], Awaitable[T]],
    ) -> T:
        """Run `primary` if it should be tried, else (or when it is unavailable) `fallback`.

        Only `BackendUnavailable` from `primary` leads to the fallback; anything else
        propagates. Exceptions from `fallback` propagate.
        """
        if self.should_try():
            try:
                result = await primary()
            except BackendUnavailable as exc:
                self.failed(exc)
            else:
                self.succeeded()
                return result
        self.fell_back()
        return await fallback()
