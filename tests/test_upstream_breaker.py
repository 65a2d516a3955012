"""The circuit breaker's state machine, on a clock the test moves."""

from __future__ import annotations

from mirror.upstream.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_consecutive_failures_and_tells_when_it_retries() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=3, reset=30.0, clock=clock)
    for _ in range(2):
        assert breaker.allow()
        breaker.failure()
    breaker.success()  # a success in between starts the count again
    for _ in range(2):
        breaker.failure()
    assert breaker.state == CLOSED and breaker.retry_in() == 0.0
    breaker.failure()
    assert breaker.state == OPEN and not breaker.allow()
    clock.now += 10
    assert breaker.retry_in() == 20.0
    clock.now += 20
    assert breaker.state == HALF_OPEN and breaker.retry_in() == 0.0


def test_half_open_lets_one_trial_through() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=1, reset=5.0, clock=clock)
    breaker.failure()
    clock.now += 5
    assert breaker.allow()
    assert not breaker.allow()  # the trial is running
    breaker.failure()  # the trial failed: open again, for a full reset period
    assert breaker.state == OPEN and breaker.retry_in() == 5.0
    clock.now += 5
    assert breaker.allow()
    breaker.release()  # an answer that says nothing about health (a 404): the upstream is up
    assert breaker.state == CLOSED and breaker.allow()
