"""Notifications through Redis: replicas share each endpoint's queue and deliver each
event once; while Redis is away events wait in the local queue and still arrive."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from mirror.coordination.redisconn import redis_from_config
from mirror.events.dispatcher import Dispatcher
from mirror.events.setup import EndpointSettings, build_dispatcher
from tests.events_helpers import blob_event
from tests.support.redis import TcpProxy, delete_prefix, redis_client, unique_prefix
from tests.support.webhook import WebhookReceiver

pytestmark = [pytest.mark.anyio, pytest.mark.redis]


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    client = await redis_client()
    name = unique_prefix()
    try:
        yield name
    finally:
        await delete_prefix(client, name)
        await client.aclose()


def replica(directory: Path, client: aioredis.Redis, prefix: str, url: str) -> Dispatcher:
    settings = EndpointSettings(name="hook", url=url, threshold=3, backoff=0.05)
    return build_dispatcher(
        [settings],
        directory=directory,
        redis=client,
        redis_prefix=prefix,
        poll_interval=0.05,
        claim_ttl=2.0,
    )


async def test_replicas_sharing_redis_deliver_each_event_once(tmp_path: Path, prefix: str) -> None:
    clients = [await redis_client() for _ in range(3)]
    async with WebhookReceiver() as receiver:
        # Three replicas: each its own disk, one Redis.
        hubs = [
            replica(tmp_path / f"replica-{n}", client, prefix, receiver.url)
            for n, client in enumerate(clients)
        ]
        for hub in hubs:
            hub.start()
        events = [blob_event(n) for n in range(60)]
        for n, event in enumerate(events):
            await hubs[n % 3].emit(event)
        await receiver.wait_for({event.id for event in events})
        await asyncio.sleep(0.3)
        for hub in hubs:
            await hub.aclose()
    for client in clients:
        await client.aclose()
    assert sorted(receiver.ids()) == sorted(event.id for event in events)
    assert sum(hub.stats()["hook"].queued for hub in hubs) == 60
    assert sum(hub.stats()["hook"].delivered for hub in hubs) == 60


async def test_events_emitted_while_redis_is_down_wait_locally_and_arrive(
    tmp_path: Path, prefix: str
) -> None:
    await (await redis_client()).aclose()  # skips (or fails in CI) without Redis
    proxy = TcpProxy()
    await proxy.start()
    client = redis_from_config(f"127.0.0.1:{proxy.port}", None, 0, dial_timeout=0.3)
    async with WebhookReceiver() as receiver:
        hub = replica(tmp_path, client, prefix, receiver.url)
        hub.start()
        before = blob_event(0)
        await hub.emit(before)
        await receiver.wait_for({before.id})
        await proxy.stop()
        during = [blob_event(n) for n in range(1, 6)]
        for event in during:
            await hub.emit(event)  # never raises: the local queue takes them
        await receiver.wait_for({event.id for event in during})
        await proxy.start()
        after = blob_event(6)
        await hub.emit(after)
        await receiver.wait_for({after.id})
        await hub.aclose()
    await client.aclose()
    await proxy.stop()
    assert hub.stats()["hook"].errors == 0
    assert sorted(receiver.ids()) == sorted([before.id, *(e.id for e in during), after.id])
