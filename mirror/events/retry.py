"""When to retry a failed delivery: registry:2's `threshold` and `backoff`.

The reference wraps each endpoint's HTTP sink in go-events' retrying sink with a
`Breaker(threshold, backoff)`: below `threshold` consecutive failures the next attempt
goes at once; from then on each attempt waits until `backoff` has passed since the last
failure. A success resets the count. Events are never dropped for failing (only the
queue's cap drops them here).
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Breaker:
    """The reference's breaker, for one endpoint's delivery loop (not thread-safe)."""

    def __init__(
        self,
        threshold: int = 10,
        backoff: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if threshold < 1:
            raise ValueError(f"threshold must be at least 1, not {threshold!r}")
        if not backoff > 0:
            raise ValueError(f"backoff must be positive seconds, not {backoff!r}")
        self.threshold = threshold
        self.backoff = backoff
        self._clock = clock
        self.failures = 0
        self._last_failure = 0.0

    def delay(self) -> float:
        """Seconds to wait before the next attempt (0: go now)."""
        if self.failures < self.threshold:
            return 0.0
        return max(0.0, self._last_failure + self.backoff - self._clock())

    def failure(self) -> None:
        self.failures += 1
        self._last_failure = self._clock()

    def success(self) -> None:
        self.failures = 0
        self._last_failure = 0.0
