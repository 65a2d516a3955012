"""Named health checks, polled in the background, with registry:2's thresholds.

Each check has a `CheckState`. A polled check runs at start and then every `interval`;
a state can also be pushed (`HealthRegistry.state`), for something that already knows
(an upstream's circuit breaker). A state reports failing once `threshold` consecutive
attempts failed (threshold 0 or 1: the first failure), and passing again at the next
success, as the reference's threshold updater does; a check that is no longer polled
(after `aclose`) reports failing, as the reference's does.

Critical checks decide health (`/debug/health`) and readiness; non-critical ones (an
upstream registry: a mirror that cannot reach it still serves its cache) are only
reported.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from mirror.health.checks import Check

logger = logging.getLogger("mirror.health")

PENDING = "pending"
PASSING = "passing"
FAILING = "failing"


@dataclass(frozen=True, slots=True)
class CheckStatus:
    """A check as last seen. `error` is the last attempt's error (also while the
    threshold is not reached yet); `checked_at` is wall-clock seconds."""

    name: str
    critical: bool
    # PENDING until an attempt passed (or the failures reach the threshold), then
    # PASSING or FAILING.
    state: str
    error: str
    failures: int  # consecutive failed attempts
    checked_at: float | None


class CheckState:
    """The threshold updater of one check."""

    def __init__(
        self,
        name: str,
        *,
        threshold: int = 1,
        critical: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if threshold < 0:
            raise ValueError(f"threshold must not be negative, not {threshold!r}")
        self.name = name
        self.threshold = max(threshold, 1)
        self.critical = critical
        self._clock = clock
        self._error: str | None = None
        self._failures = 0
        self._passed = False
        self._stopped: str | None = None
        self._checked_at: float | None = None

    def update(self, error: str | None) -> None:
        """Record one attempt: None when it passed, else why it failed."""
        was = self.state
        self._passed = self._passed or error is None
        self._checked_at = self._clock()
        self._error = error
        self._failures = 0 if error is None else min(self._failures + 1, self.threshold)
        now = self.state
        if now != was and now == FAILING:
            log = logger.warning if self.critical else logger.info
            log("health check %s is failing: %s", self.name, error)
        elif now != was and was == FAILING:
            logger.info("health check %s is passing again", self.name)

    def stop(self, reason: str) -> None:
        self._stopped = f"health: check is not polled: {reason}"

    @property
    def failing(self) -> str | None:
        """The error to report when the state is failing, else None."""
        if self._stopped is not None:
            return self._stopped
        if self._failures >= self.threshold:
            return self._error
        return None

    @property
    def state(self) -> str:
        if self.failing is not None:
            return FAILING
        return PASSING if self._passed else PENDING

    def status(self) -> CheckStatus:
        return CheckStatus(
            name=self.name,
            critical=self.critical,
            state=self.state,
            error=self.failing or self._error or "",
            failures=self._failures,
            checked_at=self._checked_at,
        )


@dataclass(frozen=True, slots=True)
class _Polled:
    state: CheckState
    check: Check
    interval: float
    timeout: float


class HealthRegistry:
    """The checks of one process. ``start()`` once the event loop runs, ``aclose()`` at
    shutdown (it closes checks that have an ``aclose``)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._states: dict[str, CheckState] = {}
        self._polled: list[_Polled] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._clock = clock

    def _new_state(self, name: str, threshold: int, critical: bool) -> CheckState:
        if name in self._states:
            raise ValueError(f"health check {name!r} is registered twice")
        state = CheckState(name, threshold=threshold, critical=critical, clock=self._clock)
        self._states[name] = state
        return state

    def add(
        self,
        name: str,
        check: Check,
        *,
        interval: float = 10.0,
        threshold: int = 1,
        timeout: float | None = None,
        critical: bool = True,
    ) -> CheckState:
        """Poll `check` every `interval` seconds once started. An attempt that takes
        longer than `timeout` (default: the interval) fails. Names are unique."""
        if not interval > 0:
            raise ValueError(f"interval must be positive seconds, not {interval!r}")
        state = self._new_state(name, threshold, critical)
        self._polled.append(_Polled(state, check, interval, timeout or interval))
        return state

    def state(self, name: str, *, threshold: int = 1, critical: bool = False) -> CheckState:
        """A state that something else updates (``update(error or None)``), for the
        upstream hook: by default it is reported but decides nothing."""
        return self._new_state(name, threshold, critical)

    async def _attempt(self, polled: _Polled) -> None:
        try:
            async with asyncio.timeout(polled.timeout):
                await polled.check()
        except TimeoutError:
            polled.state.update(f"timed out after {polled.timeout:g}s")
        except Exception as exc:
            polled.state.update(str(exc) or type(exc).__name__)
        else:
            polled.state.update(None)

    async def _poll(self, polled: _Polled) -> None:
        while True:
            await self._attempt(polled)
            await asyncio.sleep(polled.interval)

    async def check_now(self) -> None:
        """Run every polled check once, now, side by side."""
        await asyncio.gather(*(self._attempt(polled) for polled in self._polled))

    def start(self) -> None:
        """Start polling (the first attempt of each check at once). Idempotent."""
        if self._tasks:
            return
        for polled in self._polled:
            name = f"health:{polled.state.name}"
            self._tasks.append(asyncio.create_task(self._poll(polled), name=name))

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for polled in self._polled:
            polled.state.stop("stopped")
            close = getattr(polled.check, "aclose", None)
            if close is not None:
                await close()

    def failing(self) -> dict[str, str]:
        """Critical checks that are failing, by name, with their errors."""
        return {
            name: error
            for name, state in self._states.items()
            if state.critical and (error := state.failing) is not None
        }

    def not_ready(self) -> dict[str, str]:
        """Critical checks that keep the process from being ready: failing, or not
        passed yet, by name with the reason."""
        reasons: dict[str, str] = {}
        for name, state in self._states.items():
            if not state.critical:
                continue
            if state.state == FAILING:
                reasons[name] = state.failing or "failing"
            elif state.state == PENDING:
                reasons[name] = state.status().error or "not checked yet"
        return reasons

    def statuses(self) -> list[CheckStatus]:
        """Every check, critical or not, in registration order."""
        return [state.status() for state in self._states.values()]
