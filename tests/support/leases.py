"""Helpers of the lease tests: a coordinator whose Redis is unreachable, a must-win acquire."""

from __future__ import annotations

from mirror.coordination.leases import Coordinator, Lease
from mirror.coordination.redis_leases import RedisCoordinator
from mirror.coordination.redisconn import redis_from_config
from tests.support.redis import closed_port, unique_prefix

# Waiting tests poll this slowly, so a prompt wake can only come from a notification.
POLL = 0.5


def dead_redis(prefix: str = "") -> RedisCoordinator:
    client = redis_from_config(f"127.0.0.1:{closed_port()}", None, 0)
    return RedisCoordinator(client, prefix or unique_prefix(), poll_interval=POLL)


async def must_acquire(coordinator: Coordinator, key: str, ttl: float, info: bytes = b"") -> Lease:
    lease = await coordinator.acquire(key, ttl, info)
    assert lease is not None
    return lease
