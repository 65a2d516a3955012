"""The shared event queue suite on the real Redis, and an unreachable Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from mirror.coordination.failover import BackendUnavailable
from mirror.coordination.redisconn import redis_from_config
from mirror.events.queue import EventQueue
from mirror.events.redis_queue import RedisEventQueue
from tests.event_queue_suite import EventQueueSuite, Queues, payloads
from tests.support.redis import closed_port, delete_prefix, redis_client, unique_prefix

pytestmark = [pytest.mark.anyio, pytest.mark.redis]


@pytest.fixture
async def queues() -> AsyncIterator[Queues]:
    client = await redis_client()
    prefix = unique_prefix()
    opened: list[EventQueue] = []

    def open_queue(limit: int = 1000) -> EventQueue:
        queue = RedisEventQueue(client, "hook", prefix=prefix, limit=limit)
        opened.append(queue)
        return queue

    try:
        yield open_queue
    finally:
        for queue in opened:
            await queue.aclose()
        await delete_prefix(client, prefix)
        await client.aclose()


class TestRedisEventQueue(EventQueueSuite):
    pass


async def test_endpoints_have_separate_streams() -> None:
    client = await redis_client()
    prefix = unique_prefix()
    try:
        one = RedisEventQueue(client, "one", prefix=prefix)
        two = RedisEventQueue(client, "two", prefix=prefix)
        await one.append(payloads(2))
        assert (await one.size(), await two.size()) == (2, 0)
        claim = await one.claim(5.0)
        assert claim is not None
        other = await two.claim(5.0)  # another endpoint's claim is its own
        assert other is not None
        await claim.release()
        await other.release()
        assert one.description == f"redis {prefix}events:one"
    finally:
        await delete_prefix(client, prefix)
        await client.aclose()


async def test_an_unreachable_redis_is_backend_unavailable() -> None:
    client = redis_from_config(f"127.0.0.1:{closed_port()}", None, 0, dial_timeout=0.2)
    queue = RedisEventQueue(client, "hook", prefix=unique_prefix())
    try:
        for call in (
            queue.append(payloads(1)),
            queue.peek(1),
            queue.remove(["1-0"]),
            queue.size(),
            queue.claim(1.0),
        ):
            with pytest.raises(BackendUnavailable):
                await call
    finally:
        await queue.aclose()
        await client.aclose()
