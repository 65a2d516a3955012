"""One suite for every Coordinator, then what only some of them do.

Each implementation is tested through two handles on one lease space: two Redis clients,
two coordinators on one directory, or (where the lease space is one process) the same
coordinator twice. Waiting tests use a long poll interval (0.5 s) so that a prompt wake
can only come from a release notification or a timed expiry, not from polling.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import logging
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from mirror.coordination import liveness
from mirror.coordination.failover import BackendUnavailable
from mirror.coordination.fallback_leases import FallbackCoordinator
from mirror.coordination.file_leases import FileCoordinator
from mirror.coordination.leases import Coordinator, Lease, LocalCoordinator
from mirror.coordination.redis_leases import RedisCoordinator
from mirror.coordination.redisconn import redis_from_config
from mirror.metrics import MetricsRegistry
from tests.support.leases import POLL, dead_redis, must_acquire
from tests.support.redis import (
    REDIS_ADDR,
    TcpProxy,
    delete_prefix,
    redis_client,
    unique_prefix,
)

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).parent.parent


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Pair:
    a: Coordinator
    b: Coordinator
    # Whether a release through `a` is pushed to waiters on `b` (else they poll).
    pushed: bool


@pytest.fixture(
    params=[
        "local",
        "file",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("fallback-redis", marks=pytest.mark.redis),
        "fallback-dead-redis",
        "fallback-dead-redis-file",
    ]
)
async def pair(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Pair]:
    kind: str = request.param
    if kind == "local":
        local = LocalCoordinator()
        yield Pair(local, local, pushed=True)
        await local.aclose()
    elif kind == "file":
        one = FileCoordinator(tmp_path / "leases", poll_interval=POLL)
        two = FileCoordinator(tmp_path / "leases", poll_interval=POLL)
        yield Pair(one, two, pushed=False)
        await one.aclose()
        await two.aclose()
    elif kind in ("redis", "fallback-redis"):
        prefix = unique_prefix()
        clients = [await redis_client(), await redis_client()]
        coordinators: list[Coordinator] = [
            RedisCoordinator(c, prefix, poll_interval=POLL) for c in clients
        ]
        metrics = MetricsRegistry()
        if kind == "fallback-redis":
            coordinators = [
                FallbackCoordinator(c, LocalCoordinator(), metrics=metrics) for c in coordinators
            ]
        try:
            yield Pair(coordinators[0], coordinators[1], pushed=True)
            fallbacks = metrics.counter("mirror_redis_fallbacks_total", "", ("component",))
            assert fallbacks.get("coordination") == 0
        finally:
            for coordinator in coordinators:
                await coordinator.aclose()
            await delete_prefix(clients[0], prefix)
            for client in clients:
                await client.aclose()
    elif kind == "fallback-dead-redis":
        degraded = FallbackCoordinator(dead_redis(), LocalCoordinator(), metrics=MetricsRegistry())
        yield Pair(degraded, degraded, pushed=True)
        await degraded.aclose()
    else:
        one_dead = FallbackCoordinator(
            dead_redis(), FileCoordinator(tmp_path / "l", poll_interval=POLL), min_backoff=0.05
        )
        two_dead = FallbackCoordinator(
            dead_redis(), FileCoordinator(tmp_path / "l", poll_interval=POLL), min_backoff=0.05
        )
        yield Pair(one_dead, two_dead, pushed=False)
        await one_dead.aclose()
        await two_dead.aclose()


# The shared suite.


async def test_one_holder_at_a_time(pair: Pair) -> None:
    lease = await must_acquire(pair.a, "blob/sha256:aa", 5, b"holder-a")
    assert lease.key == "blob/sha256:aa" and len(lease.token) == 32
    assert await pair.b.acquire("blob/sha256:aa", 5) is None
    assert await pair.a.acquire("blob/sha256:aa", 5) is None
    assert await pair.b.holder_info("blob/sha256:aa") == b"holder-a"
    assert await pair.a.holder_info("blob/sha256:aa") == b"holder-a"
    other = await must_acquire(pair.b, "blob/sha256:bb", 5)
    await lease.release()
    assert await pair.b.holder_info("blob/sha256:aa") is None
    again = await must_acquire(pair.b, "blob/sha256:aa", 5, b"holder-b")
    assert await pair.a.holder_info("blob/sha256:aa") == b"holder-b"
    for held in (again, other):
        await held.release()


async def test_info_is_binary_and_may_be_empty(pair: Pair) -> None:
    first = await must_acquire(pair.a, "k:1/@x*", 5)
    assert await pair.b.holder_info("k:1/@x*") == b""
    info = bytes(range(256)) + b"\n\n"
    second = await must_acquire(pair.a, "k:2", 5, info)
    assert await pair.b.holder_info("k:2") == info
    await first.release()
    await second.release()


async def test_exactly_one_of_many_concurrent_acquirers_wins(pair: Pair) -> None:
    for round_ in range(3):
        key = f"race/{round_}"
        sides = [pair.a, pair.b] * 10
        leases = await asyncio.gather(*(side.acquire(key, 5) for side in sides))
        winners = [lease for lease in leases if lease is not None]
        assert len(winners) == 1
        await winners[0].release()


async def test_release_is_idempotent(pair: Pair) -> None:
    lease = await must_acquire(pair.a, "idem", 5)
    await lease.release()
    await lease.release()
    assert await pair.b.holder_info("idem") is None


async def test_expired_lease_can_be_taken_and_old_holder_cannot_touch_it(pair: Pair) -> None:
    old = await must_acquire(pair.a, "exp", 0.3, b"old")
    await asyncio.sleep(0.45)
    assert await pair.a.holder_info("exp") is None
    new = await must_acquire(pair.b, "exp", 5, b"new")
    # The token check: the old holder neither extends nor deletes the new lease.
    assert await old.renew() is False
    await old.release()
    assert await pair.a.holder_info("exp") == b"new"
    assert await pair.a.acquire("exp", 5) is None
    await new.release()


async def test_renew_keeps_the_lease_past_its_ttl(pair: Pair) -> None:
    lease = await must_acquire(pair.a, "renewed", 0.3)
    for _ in range(3):
        await asyncio.sleep(0.15)
        assert await lease.renew() is True
    assert await pair.b.acquire("renewed", 5) is None
    await lease.release()


async def test_renew_takes_back_an_expired_lease_nobody_took(pair: Pair) -> None:
    lease = await must_acquire(pair.a, "lapsed", 0.2, b"me")
    await asyncio.sleep(0.3)
    assert await lease.renew() is True
    assert await pair.b.holder_info("lapsed") == b"me"
    await lease.release()


async def test_keepalive_renews_and_releases(pair: Pair) -> None:
    lease = await must_acquire(pair.a, "kept", 0.3)
    async with lease.keepalive():
        await asyncio.sleep(0.8)
        assert await pair.b.acquire("kept", 5) is None
        assert not lease.lost
    assert await pair.b.holder_info("kept") is None
    await (await must_acquire(pair.b, "kept", 5)).release()


async def test_keepalive_notices_a_lost_lease(pair: Pair) -> None:
    lease = await must_acquire(pair.a, "lost", 0.3)
    await asyncio.sleep(0.45)
    thief = await must_acquire(pair.b, "lost", 5, b"thief")
    async with lease.keepalive():
        await asyncio.sleep(0.2)
        assert lease.lost
    assert await pair.a.holder_info("lost") == b"thief"
    await thief.release()


async def test_wait_on_a_free_key_returns_at_once(pair: Pair) -> None:
    started = time.monotonic()
    assert await pair.b.wait_released("free", 5) is True
    assert time.monotonic() - started < 0.1


async def test_wait_times_out(pair: Pair) -> None:
    lease = await must_acquire(pair.a, "busy", 5)
    started = time.monotonic()
    assert await pair.b.wait_released("busy", 0.2) is False
    assert 0.2 <= time.monotonic() - started < 0.2 + POLL
    assert await pair.b.wait_released("busy", 0) is False
    await lease.release()


async def test_release_wakes_waiters_promptly(pair: Pair) -> None:
    waiter_side = pair.b if pair.pushed else pair.a
    lease = await must_acquire(pair.a, "wake", 5)
    woken: list[float] = []

    async def wait() -> None:
        assert await waiter_side.wait_released("wake", 5) is True
        woken.append(time.monotonic())

    waiters = [asyncio.create_task(wait()) for _ in range(5)]
    await asyncio.sleep(0.3)  # let them subscribe and settle into a poll sleep
    released = time.monotonic()
    await lease.release()
    await asyncio.wait_for(asyncio.gather(*waiters), 5)
    assert len(woken) == 5
    assert max(woken) - released < 0.1, "woken by polling, not by the release"


async def test_expiry_wakes_waiters(pair: Pair) -> None:
    await must_acquire(pair.a, "dies", 0.4)  # the holder never renews nor releases
    started = time.monotonic()
    assert await pair.b.wait_released("dies", 5) is True
    assert 0.3 <= time.monotonic() - started < 0.4 + 0.2


async def test_ttl_must_be_positive(pair: Pair) -> None:
    for ttl in (0.0, -1.0):
        with pytest.raises(ValueError):
            await pair.a.acquire("k", ttl)


# Local specifics.


async def test_local_close_wakes_waiters() -> None:
    local = LocalCoordinator()
    await must_acquire(local, "k", 30)
    waiter = asyncio.create_task(local.wait_released("k", 5))
    await asyncio.sleep(0.05)
    await local.aclose()
    assert await asyncio.wait_for(waiter, 1) is True


async def test_keepalive_survives_failing_renewals(caplog: pytest.LogCaptureFixture) -> None:
    class Flaky(Lease):
        def __init__(self) -> None:
            super().__init__("k", "t" * 32, 0.06, b"")
            self.renewals = 0
            self.released = False

        async def renew(self) -> bool:
            self.renewals += 1
            if self.renewals <= 2:
                raise BackendUnavailable("Redis is away")
            raise RuntimeError("a bug")

        async def release(self) -> None:
            self.released = True
            raise BackendUnavailable("still away")

    lease = Flaky()
    with caplog.at_level(logging.DEBUG, logger="mirror.cache"):
        async with lease.keepalive():
            # Renewals every 20 ms; a loaded machine may take longer, so wait for them.
            for _ in range(500):
                if lease.renewals >= 3:
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.1)  # time for more renewals, had it not stopped
    assert lease.renewals == 3  # retried after outages, stopped after the bug
    assert lease.released and not lease.lost
    assert any(r.exc_info for r in caplog.records if r.levelno == logging.ERROR)


# File specifics.


_RACER = """
import asyncio, sys, time
from mirror.coordination.file_leases import FileCoordinator
async def main():
    coordinator = FileCoordinator(sys.argv[1])
    while time.time() < float(sys.argv[2]):
        await asyncio.sleep(0.001)
    lease = await coordinator.acquire("race", 10, sys.argv[3].encode())
    print("won" if lease else "lost", flush=True)
    await asyncio.sleep(1.0)
    if lease:
        await lease.release()
asyncio.run(main())
"""


async def run_python(*args: str, timeout: float = 60) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *args, stdout=asyncio.subprocess.PIPE, cwd=ROOT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode == 0
    return out.decode().strip()


async def test_file_leases_between_processes(tmp_path: Path) -> None:
    start = str(time.time() + 1.5)
    outputs = await asyncio.gather(
        *(run_python("-c", _RACER, str(tmp_path), start, f"p{i}") for i in range(4))
    )
    assert sorted(outputs) == ["lost", "lost", "lost", "won"]
    assert await FileCoordinator(tmp_path).holder_info("race") is None


_HOLDER = """
import asyncio, sys
async def main():
    if sys.argv[1] == "file":
        from mirror.coordination.file_leases import FileCoordinator
        coordinator = FileCoordinator(sys.argv[2])
    else:
        from mirror.coordination.redis_leases import RedisCoordinator
        from mirror.coordination.redisconn import redis_from_config
        coordinator = RedisCoordinator(redis_from_config(sys.argv[2], None, 0), sys.argv[3])
    lease = await coordinator.acquire("held", 0.5, b"doomed")
    assert lease is not None
    async with lease.keepalive():
        print("held", flush=True)
        await asyncio.sleep(60)
asyncio.run(main())
"""


@pytest.mark.parametrize("kind", ["file", pytest.param("redis", marks=pytest.mark.redis)])
async def test_lease_of_a_killed_holder_expires(kind: str, tmp_path: Path) -> None:
    prefix = unique_prefix()
    client: aioredis.Redis | None = None
    coordinator: Coordinator
    if kind == "file":
        coordinator = FileCoordinator(tmp_path, poll_interval=POLL)
        where = str(tmp_path)
    else:
        client = await redis_client()
        coordinator = RedisCoordinator(client, prefix, poll_interval=POLL)
        where = REDIS_ADDR
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _HOLDER, kind, where, prefix, stdout=asyncio.subprocess.PIPE, cwd=ROOT
    )
    try:
        assert proc.stdout is not None
        assert await asyncio.wait_for(proc.stdout.readline(), 30) == b"held\n"
        await asyncio.sleep(0.7)  # past one ttl: the holder's keepalive renews it
        assert await coordinator.holder_info("held") == b"doomed"
        os.kill(proc.pid, signal.SIGKILL)
        await proc.wait()
        started = time.monotonic()
        assert await coordinator.wait_released("held", 5) is True
        assert time.monotonic() - started < 0.5 + 0.2
        await (await must_acquire(coordinator, "held", 5)).release()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await coordinator.aclose()
        if client is not None:
            await delete_prefix(client, prefix)
            await client.aclose()


async def test_file_lock_held_elsewhere_times_out(tmp_path: Path) -> None:
    coordinator = FileCoordinator(tmp_path, lock_timeout=0.05)
    digest = hashlib.sha256(b"stuck").hexdigest()
    stripe = tmp_path / f"stripe-{int(digest[:8], 16) % 64:02d}.lock"
    fd = os.open(stripe, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # as if another process stopped while holding it
    try:
        with pytest.raises(BackendUnavailable):
            await coordinator.acquire("stuck", 5)
    finally:
        os.close(fd)
    await (await must_acquire(coordinator, "stuck", 5)).release()
    await coordinator.aclose()


async def test_file_torn_record_counts_as_free(tmp_path: Path) -> None:
    coordinator = FileCoordinator(tmp_path)
    digest = hashlib.sha256(b"torn").hexdigest()
    for junk in (b"mirror-lease-1\nabc", b"mirror-lease-1\ntok\nnot-a-time\ninfo", b"\x00"):
        (tmp_path / f"{digest}.lease").write_bytes(junk)
        assert await coordinator.holder_info("torn") is None
    await (await must_acquire(coordinator, "torn", 5)).release()
    await coordinator.aclose()


# Redis specifics.


@pytest.mark.redis
async def test_redis_lease_layout_and_release_message() -> None:
    raw = await redis_client()
    prefix = unique_prefix()
    coordinator = RedisCoordinator(raw, prefix)
    pubsub = raw.pubsub()
    try:
        await pubsub.subscribe(f"{prefix}lease-released")
        confirmed = await pubsub.get_message(timeout=1)
        assert confirmed is not None and confirmed["type"] == "subscribe"
        lease = await must_acquire(coordinator, "blob/x", 5, b"info")
        stored = await raw.get(f"{prefix}lease:blob/x")
        assert stored == lease.token.encode() + liveness.holder_id() + b"\n" + b"info"
        assert 0 < await raw.pttl(f"{prefix}lease:blob/x") <= 5000
        await lease.release()
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
        assert message is not None and message["data"] == b"blob/x"
        # A release by a stale holder publishes nothing and deletes nothing.
        await raw.set(f"{prefix}lease:blob/x", b"f" * 32 + b"other")
        await lease.release()
        assert await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2) is None
        assert await coordinator.holder_info("blob/x") == b"other"
    finally:
        await pubsub.aclose()
        await coordinator.aclose()
        await delete_prefix(raw, prefix)
        await raw.aclose()


@pytest.mark.redis
async def test_redis_subscription_comes_back_after_an_outage() -> None:
    raw = await redis_client()
    proxy = TcpProxy()
    port = await proxy.start()
    prefix = unique_prefix()
    client = redis_from_config(f"127.0.0.1:{port}", None, 0)
    waiter = RedisCoordinator(client, prefix, poll_interval=POLL)
    holder = RedisCoordinator(raw, prefix)
    try:
        assert await waiter.wait_released("k", 1)  # starts the subscriber
        await proxy.stop()
        with pytest.raises(BackendUnavailable):
            await waiter.wait_released("k", 1)
        await proxy.start()
        await asyncio.sleep(0.6)  # the subscriber retries after 0.1 s, 0.2 s, ...
        lease = await must_acquire(holder, "k", 5)
        task = asyncio.create_task(waiter.wait_released("k", 5))
        await asyncio.sleep(0.2)
        released = time.monotonic()
        await lease.release()
        assert await asyncio.wait_for(task, 5) is True
        assert time.monotonic() - released < 0.1
    finally:
        await waiter.aclose()
        await holder.aclose()
        await client.aclose()
        await proxy.stop()
        await delete_prefix(raw, prefix)
        await raw.aclose()


@pytest.mark.redis
async def test_redis_subscriber_survives_garbage_on_its_channel(
    caplog: pytest.LogCaptureFixture,
) -> None:
    raw = await redis_client()
    prefix = unique_prefix()
    coordinator = RedisCoordinator(raw, prefix, poll_interval=POLL)
    try:
        lease = await must_acquire(coordinator, "k", 5)
        # A fresh coordinator with no time to subscribe: the answer comes from Redis.
        assert await coordinator.wait_released("k", 0) is False
        assert await coordinator.wait_released("k", 0.3) is False  # now subscribed
        with caplog.at_level(logging.ERROR, logger="mirror.cache"):
            await raw.publish(f"{prefix}lease-released", b"\xff not utf-8")
            await asyncio.sleep(0.5)  # the subscriber logs, backs off 0.1 s, resubscribes
        assert any(r.exc_info for r in caplog.records if r.name == "mirror.cache")
        task = asyncio.create_task(coordinator.wait_released("k", 5))
        await asyncio.sleep(0.2)
        released = time.monotonic()
        await lease.release()
        assert await asyncio.wait_for(task, 5) is True
        assert time.monotonic() - released < 0.1
    finally:
        await coordinator.aclose()
        await delete_prefix(raw, prefix)
        await raw.aclose()
