"""Polling checks with registry:2's thresholds; pushed (non-critical) states."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mirror.health.checks import CheckFailed, FileCheck
from mirror.health.registry import FAILING, PASSING, PENDING, CheckState, HealthRegistry
from tests.events_helpers import eventually

pytestmark = pytest.mark.anyio


def test_a_state_fails_after_threshold_failures_in_a_row() -> None:
    state = CheckState("c", threshold=3)
    assert state.state == PENDING
    state.update("boom 1")
    state.update("boom 2")
    assert (state.state, state.failing) == (PENDING, None)  # below the threshold
    state.update("boom 3")
    assert (state.state, state.failing) == (FAILING, "boom 3")
    state.update("boom 4")
    assert state.failing == "boom 4"  # the latest error is reported
    state.update(None)
    assert state.state == PASSING
    assert not state.failing
    state.update("again")
    state.update("again")
    assert state.state == PASSING  # a success resets the count
    state.update("again")
    assert state.state == FAILING


def test_without_a_threshold_one_failure_is_enough() -> None:
    for threshold in (0, 1):
        state = CheckState("c", threshold=threshold)
        state.update(None)
        state.update("down")
        assert state.failing == "down"
    with pytest.raises(ValueError, match="negative"):
        CheckState("c", threshold=-1)


def test_a_stopped_check_reports_it_whatever_its_threshold() -> None:
    state = CheckState("c", threshold=5)
    state.update(None)
    state.stop("stopped")
    assert state.failing == "health: check is not polled: stopped"


async def test_polled_checks_follow_the_file(tmp_path: Path) -> None:
    marker = tmp_path / "down"
    registry = HealthRegistry()
    registry.add(str(marker), FileCheck(str(marker)), interval=0.02, threshold=2)
    registry.start()
    try:
        await eventually(lambda: registry.statuses()[0].state == PASSING, what="a pass")
        assert registry.failing() == {}
        marker.write_text("")
        await eventually(lambda: bool(registry.failing()), what="the failure")
        assert registry.failing() == {str(marker): "file exists"}
        assert registry.statuses()[0].failures == 2
        marker.unlink()
        await eventually(lambda: not registry.failing(), what="the recovery")
    finally:
        await registry.aclose()
    assert registry.failing() == {str(marker): "health: check is not polled: stopped"}


async def test_a_check_that_hangs_times_out() -> None:
    async def hangs() -> None:
        await asyncio.sleep(60)

    registry = HealthRegistry()
    registry.add("slow", hangs, interval=10.0, timeout=0.05)
    await registry.check_now()
    assert registry.failing() == {"slow": "timed out after 0.05s"}


async def test_a_check_s_exception_text_is_its_error() -> None:
    async def raises() -> None:
        raise CheckFailed("disk on fire")

    async def silent() -> None:
        raise RuntimeError

    registry = HealthRegistry(clock=lambda: 1234.5)
    registry.add("loud", raises)
    registry.add("quiet", silent)
    await registry.check_now()
    assert registry.failing() == {"loud": "disk on fire", "quiet": "RuntimeError"}
    assert registry.statuses()[0].checked_at == 1234.5


async def test_pushed_states_are_reported_but_decide_nothing_by_default() -> None:
    async def fine() -> None:
        return None

    registry = HealthRegistry()
    registry.add("storagedriver_filesystem", fine)
    upstream = registry.state("upstream docker.io")
    upstream.update("connection refused")
    await registry.check_now()
    assert registry.failing() == {}
    assert registry.not_ready() == {}
    status = registry.statuses()[1]
    assert (status.name, status.critical, status.state, status.error) == (
        "upstream docker.io",
        False,
        FAILING,
        "connection refused",
    )
    critical = registry.state("pushed and critical", critical=True)
    assert registry.not_ready() == {"pushed and critical": "not checked yet"}
    critical.update("no")
    assert registry.failing() == {"pushed and critical": "no"}


def test_names_are_unique_and_intervals_positive() -> None:
    async def fine() -> None:
        return None

    registry = HealthRegistry()
    registry.add("a", fine)
    with pytest.raises(ValueError, match="twice"):
        registry.add("a", fine)
    with pytest.raises(ValueError, match="twice"):
        registry.state("a")
    with pytest.raises(ValueError, match="interval"):
        registry.add("b", fine, interval=0)
