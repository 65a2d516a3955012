"""A circuit breaker per upstream: after repeated failures, stop waiting on it for a while.

Closed: requests go through. After `failures` consecutive failures it opens: requests
fail at once (the caller serves from cache) for `reset` seconds. Then it is half-open: one
request goes through as a trial; success closes it, failure opens it again.
"""

from __future__ import annotations

import time
from collections.abc import Callable

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
STATE_VALUES = {CLOSED: 0.0, HALF_OPEN: 1.0, OPEN: 2.0}


class CircuitBreaker:
    def __init__(
        self,
        failures: int = 5,
        reset: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = max(failures, 1)
        self.reset = reset
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_running = False

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return CLOSED
        if self._clock() - self._opened_at >= self.reset:
            return HALF_OPEN
        return OPEN

    def allow(self) -> bool:
        """Whether a request may go to the upstream now (claims the half-open trial)."""
        state = self.state
        if state == CLOSED:
            return True
        if state == HALF_OPEN and not self._trial_running:
            self._trial_running = True
            return True
        return False

    def success(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._trial_running = False

    def failure(self) -> None:
        self._failures += 1
        if self._trial_running or self._failures >= self.threshold:
            self._opened_at = self._clock()
        self._trial_running = False

    def release(self) -> None:
        """The request ended without telling anything about upstream health (e.g. a 404)."""
        if self._trial_running:
            self.success()
