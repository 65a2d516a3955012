"""The fallback coordinator: Redis first, the embedded leases while Redis is away."""

from __future__ import annotations

import asyncio
import logging

import pytest

from mirror.coordination.failover import BackendUnavailable
from mirror.coordination.fallback_leases import FallbackCoordinator
from mirror.coordination.leases import Lease, LocalCoordinator
from mirror.coordination.redis_leases import RedisCoordinator
from mirror.coordination.redisconn import redis_from_config
from mirror.metrics import MetricsRegistry
from tests.support.leases import dead_redis, must_acquire
from tests.support.redis import TcpProxy, delete_prefix, redis_client, unique_prefix

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_fallback_works_without_redis(caplog: pytest.LogCaptureFixture) -> None:
    metrics = MetricsRegistry()
    coordinator = FallbackCoordinator(dead_redis(), LocalCoordinator(), metrics=metrics)
    with caplog.at_level(logging.INFO, logger="mirror.cache"):
        lease = await must_acquire(coordinator, "k", 0.3, b"me")
        assert await coordinator.acquire("k", 1) is None
        assert await coordinator.holder_info("k") == b"me"
        assert await coordinator.holder_info("free") is None
        assert await coordinator.wait_released("k", 0.05) is False
        async with lease.keepalive():
            await asyncio.sleep(0.5)
            assert await coordinator.holder_info("k") == b"me"
        assert await coordinator.wait_released("k", 1) is True
        await coordinator.aclose()
    records = [r for r in caplog.records if r.name == "mirror.cache"]
    assert len(records) == 1 and records[0].levelno == logging.WARNING
    outages = metrics.counter("mirror_redis_outages_total", "", ("component",))
    assert outages.get("coordination") == 1
    up = metrics.gauge("mirror_redis_up", "", ("component",))
    assert up.get("coordination") == 0


@pytest.mark.redis
async def test_fallback_through_an_outage_and_back() -> None:
    raw = await redis_client()
    proxy = TcpProxy()
    port = await proxy.start()
    prefix = unique_prefix()
    client = redis_from_config(f"127.0.0.1:{port}", None, 0)
    metrics = MetricsRegistry()
    coordinator = FallbackCoordinator(
        RedisCoordinator(client, prefix, poll_interval=0.1),
        LocalCoordinator(),
        min_backoff=0.1,
        metrics=metrics,
    )
    other_host = RedisCoordinator(raw, prefix)
    up = metrics.gauge("mirror_redis_up", "", ("component",))
    try:
        # Up: leases are in Redis, so another host sees them.
        shared = await must_acquire(coordinator, "shared", 5, b"here")
        assert await other_host.holder_info("shared") == b"here"
        assert await coordinator.acquire("elsewhere", 5) is not None
        assert await other_host.acquire("elsewhere", 5) is None
        foreign = await must_acquire(other_host, "foreign", 5, b"there")
        assert await coordinator.holder_info("foreign") == b"there"
        assert await coordinator.acquire("foreign", 5) is None
        waiting = asyncio.create_task(coordinator.wait_released("foreign", 5))
        await asyncio.sleep(0.15)

        # Down: a waiter gives up waiting for what it cannot see, held leases keep
        # working, new ones are local only.
        await proxy.stop()
        assert await asyncio.wait_for(waiting, 2) is True
        assert up.get("coordination") == 0
        assert await shared.renew() is True
        assert await coordinator.acquire("shared", 5) is None  # still held locally
        during = await must_acquire(coordinator, "during", 5)
        assert await other_host.holder_info("during") is None
        await shared.release()
        assert await other_host.holder_info("shared") == b"here"  # runs out by ttl

        # Back: new leases reach Redis again.
        await proxy.start()
        await asyncio.sleep(0.15)
        after = await must_acquire(coordinator, "after", 5, b"back")
        assert await other_host.holder_info("after") == b"back"
        assert up.get("coordination") == 1
        for lease in (during, after, foreign):
            await lease.release()
    finally:
        await coordinator.aclose()
        await other_host.aclose()
        await client.aclose()
        await proxy.stop()
        await delete_prefix(raw, prefix)
        await raw.aclose()


async def test_fallback_close_ignores_an_unreachable_primary() -> None:
    class Unclosable(LocalCoordinator):
        async def aclose(self) -> None:
            raise BackendUnavailable("cannot say goodbye")

    local = LocalCoordinator()
    coordinator = FallbackCoordinator(Unclosable(), local, metrics=MetricsRegistry())
    await must_acquire(coordinator, "k", 30)
    await coordinator.aclose()
    assert await local.holder_info("k") is None  # the fallback was closed too


async def test_fallback_releases_the_local_lease_when_redis_says_no() -> None:
    class Refusing(LocalCoordinator):
        async def acquire(self, key: str, ttl: float, info: bytes = b"") -> Lease | None:
            return None

    local = LocalCoordinator()
    coordinator = FallbackCoordinator(Refusing(), local, metrics=MetricsRegistry())
    assert await coordinator.acquire("k", 5) is None
    assert await local.holder_info("k") is None


async def test_fallback_propagates_other_errors() -> None:
    class Broken(LocalCoordinator):
        async def acquire(self, key: str, ttl: float, info: bytes = b"") -> Lease | None:
            raise RuntimeError("a bug, not an outage")

    local = LocalCoordinator()
    coordinator = FallbackCoordinator(Broken(), local, metrics=MetricsRegistry())
    with pytest.raises(RuntimeError):
        await coordinator.acquire("k", 5)
    assert await local.holder_info("k") is None
    assert not coordinator.failover.down
