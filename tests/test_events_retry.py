"""registry:2's breaker: immediate retries up to `threshold`, then one per `backoff`."""

from __future__ import annotations

import pytest

from mirror.events.retry import Breaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_attempts_go_at_once_until_the_threshold() -> None:
    clock = Clock()
    breaker = Breaker(3, 2.0, clock=clock)
    for _ in range(2):
        assert breaker.delay() == 0
        breaker.failure()
    assert breaker.delay() == 0
    breaker.failure()  # the third failure in a row trips it
    assert breaker.delay() == 2.0
    clock.now += 0.5
    assert breaker.delay() == 1.5
    clock.now += 1.5
    assert breaker.delay() == 0


def test_each_failure_past_the_threshold_waits_a_backoff_from_itself() -> None:
    clock = Clock()
    breaker = Breaker(1, 1.0, clock=clock)
    breaker.failure()
    clock.now += 5.0
    assert breaker.delay() == 0
    breaker.failure()
    assert breaker.delay() == 1.0


def test_a_success_resets_it() -> None:
    clock = Clock()
    breaker = Breaker(2, 1.0, clock=clock)
    breaker.failure()
    breaker.failure()
    assert breaker.delay() > 0
    breaker.success()
    assert (breaker.delay(), breaker.failures) == (0, 0)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="threshold"):
        Breaker(0, 1.0)
    with pytest.raises(ValueError, match="backoff"):
        Breaker(1, 0.0)
