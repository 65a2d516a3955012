"""Delivering events to real HTTP receivers on loopback: fields, outages, the cap,
retries and backoff, filters, batches, two processes on one queue, shutdown."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from mirror.coordination.leases import Lease
from mirror.events.delivery import Endpoint
from mirror.events.dispatcher import Dispatcher
from mirror.events.endpoint_queue import EndpointQueue
from mirror.events.envelope import EVENTS_MEDIA_TYPE
from mirror.events.queue import QueuedEvent, QueueError
from mirror.events.setup import EndpointSettings, build_dispatcher
from mirror.events.sink import HttpSink
from tests.events_helpers import blob_event, dispatcher, endpoint, eventually
from tests.support.redis import closed_port
from tests.support.webhook import WebhookReceiver

pytestmark = pytest.mark.anyio


async def test_events_arrive_as_the_reference_posts_them(tmp_path: Path) -> None:
    async with WebhookReceiver() as receiver:
        headers = {"Authorization": ("Bearer t0ken",), "X-Multi": ("a", "b")}
        hub = dispatcher(endpoint(tmp_path, "hook", receiver.url, headers=headers))
        hub.start()
        event = blob_event(1)
        await hub.emit(event)
        await receiver.wait_for({event.id})
        await hub.aclose()
    request = receiver.requests[0]
    assert (request.method, request.path) == ("POST", "/events")
    assert request.headers["content-type"] == EVENTS_MEDIA_TYPE
    assert request.headers["authorization"] == "Bearer t0ken"
    assert request.headers["x-multi"] == "a, b"
    assert request.headers["user-agent"].startswith("mirror/")
    assert json.loads(request.body) == {"events": [event.to_json()]}
    assert hub.stats()["hook"].queued == 1
    assert hub.stats()["hook"].delivered == 1


async def test_events_emitted_while_the_sink_is_down_all_arrive_when_it_is_back(
    tmp_path: Path,
) -> None:
    receiver = WebhookReceiver()
    await receiver.start()
    await receiver.stop()  # the port is known, nothing listens on it
    hub = dispatcher(endpoint(tmp_path, "hook", receiver.url))
    hub.start()
    events = [blob_event(n) for n in range(20)]
    for event in events:
        await hub.emit(event)
    await eventually(lambda: hub.stats()["hook"].failed >= 3, what="failed attempts")
    assert hub.stats()["hook"].delivered == 0
    await receiver.start()
    try:
        await receiver.wait_for({event.id for event in events})
        assert receiver.ids() == [event.id for event in events]  # in order, once each
        await eventually(lambda: hub.stats()["hook"].delivered == 20, what="20 deliveries")
        await eventually(lambda: hub.stats()["hook"].pending == 0, what="an empty queue")
        assert "POST" in hub.stats()["hook"].last_error
    finally:
        await hub.aclose()
        await receiver.stop()


async def test_a_dead_endpoint_holds_up_only_itself(tmp_path: Path) -> None:
    dead_url = f"http://127.0.0.1:{closed_port()}/events"
    async with WebhookReceiver() as live:
        hub = dispatcher(endpoint(tmp_path, "dead", dead_url), endpoint(tmp_path, "live", live.url))
        hub.start()
        events = [blob_event(n) for n in range(10)]
        for event in events:
            await hub.emit(event)
        await live.wait_for({event.id for event in events})
        # The sink has the events before the loop has its answer and counts them.
        await eventually(lambda: hub.stats()["live"].delivered == 10, what="live's count")
        await eventually(lambda: hub.stats()["dead"].pending == 10, what="dead's pending")
        stats = hub.stats()
        await hub.aclose()
    assert stats["live"].delivered == 10
    assert (stats["dead"].queued, stats["dead"].delivered) == (10, 0)
    assert stats["dead"].failed >= 1


async def test_the_cap_drops_the_oldest_counts_and_logs_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    receiver = WebhookReceiver()
    await receiver.start()
    await receiver.stop()
    hub = dispatcher(endpoint(tmp_path, "hook", receiver.url, queue_limit=5))
    hub.start()
    events = [blob_event(n) for n in range(12)]
    with caplog.at_level("WARNING", logger="mirror.events"):
        for event in events:
            await hub.emit(event)
    assert hub.stats()["hook"].dropped == 7
    assert hub.stats()["hook"].queued == 12
    assert any("queue full" in record.getMessage() for record in caplog.records)
    await receiver.start()
    try:
        await receiver.wait_for({event.id for event in events[7:]})
        await eventually(lambda: hub.stats()["hook"].delivered == 5, what="5 deliveries")
        assert receiver.ids() == [event.id for event in events[7:]]
    finally:
        await hub.aclose()
        await receiver.stop()


async def test_error_statuses_are_retried_and_a_redirect_is_a_delivery(tmp_path: Path) -> None:
    async with WebhookReceiver(status=500) as receiver:
        hub = dispatcher(endpoint(tmp_path, "hook", receiver.url))
        hub.start()
        event = blob_event(1)
        await hub.emit(event)
        await receiver.wait_for_requests(2)
        assert hub.stats()["hook"].delivered == 0
        assert "answered 500" in hub.stats()["hook"].last_error
        receiver.status = 302
        await eventually(lambda: hub.stats()["hook"].delivered == 1, what="the delivery")
        attempts = len(receiver.requests)
        await asyncio.sleep(0.2)
        await hub.aclose()
    assert len(receiver.requests) == attempts  # delivered: no more attempts
    assert set(receiver.ids()) == {event.id}


async def test_after_threshold_failures_attempts_wait_for_the_backoff(tmp_path: Path) -> None:
    async with WebhookReceiver(status=503) as receiver:
        hub = dispatcher(endpoint(tmp_path, "hook", receiver.url, threshold=2, backoff=0.3))
        hub.start()
        await hub.emit(blob_event(1))
        await receiver.wait_for_requests(5, timeout=20)
        await hub.aclose()
    times = [request.at for request in receiver.requests]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    # Attempts 3, 4, 5 each come a backoff after the failure before them.
    assert all(gap >= 0.29 for gap in gaps[1:4]), gaps


async def test_ignored_media_types_and_actions_are_not_queued(tmp_path: Path) -> None:
    async with WebhookReceiver() as receiver:
        hub = dispatcher(
            endpoint(tmp_path, "pushes", receiver.url, ignored_actions=frozenset({"pull"})),
        )
        hub.start()
        pulled, pushed = blob_event(1, "pull"), blob_event(2, "push")
        await hub.emit(pulled)
        await hub.emit(pushed)
        await receiver.wait_for({pushed.id})
        await hub.aclose()
    assert receiver.ids() == [pushed.id]
    assert hub.stats()["pushes"].queued == 1


async def test_disabled_endpoints_get_nothing(tmp_path: Path) -> None:
    async with WebhookReceiver() as receiver:
        hub = build_dispatcher(
            [
                EndpointSettings(name="on", url=receiver.url),
                EndpointSettings(name="off", url=receiver.url, disabled=True),
            ],
            directory=tmp_path,
            poll_interval=0.05,
        )
        hub.start()
        event = blob_event(1)
        await hub.emit(event)
        await receiver.wait_for({event.id})
        await hub.aclose()
    assert list(hub.stats()) == ["on"]
    assert receiver.ids() == [event.id]


async def test_a_backlog_goes_out_in_batches_in_order(tmp_path: Path) -> None:
    receiver = WebhookReceiver()
    await receiver.start()
    await receiver.stop()
    hub = dispatcher(endpoint(tmp_path, "hook", receiver.url, batch=10))
    events = [blob_event(n) for n in range(25)]
    for event in events:
        await hub.emit(event)
    await receiver.start()
    hub.start()
    try:
        await receiver.wait_for({event.id for event in events})
    finally:
        await hub.aclose()
        await receiver.stop()
    assert [len(request.events) for request in receiver.requests] == [10, 10, 5]
    assert receiver.ids() == [event.id for event in events]


async def test_processes_sharing_a_local_queue_deliver_each_event_once(tmp_path: Path) -> None:
    async with WebhookReceiver() as receiver:
        # Two workers of one host: the same queue directory, two dispatchers.
        one = dispatcher(endpoint(tmp_path, "hook", receiver.url))
        two = dispatcher(endpoint(tmp_path, "hook", receiver.url))
        one.start()
        two.start()
        events = [blob_event(n) for n in range(40)]
        for n, event in enumerate(events):
            await (one if n % 2 else two).emit(event)
        await receiver.wait_for({event.id for event in events})
        await asyncio.sleep(0.2)
        await one.aclose()
        await two.aclose()
    assert sorted(receiver.ids()) == sorted(event.id for event in events)


async def test_events_not_delivered_at_shutdown_go_out_after_the_next_start(
    tmp_path: Path,
) -> None:
    async with WebhookReceiver() as receiver:
        receiver.hold()  # the endpoint reads the first envelope but never answers it
        first = dispatcher(endpoint(tmp_path, "hook", receiver.url, timeout=30.0))
        first.start()
        events = [blob_event(n) for n in range(3)]
        for event in events:
            await first.emit(event)
        await receiver.wait_for_requests(1)
        await first.aclose(grace=0.1)  # the attempt in flight is abandoned
        receiver.release()
        second = dispatcher(endpoint(tmp_path, "hook", receiver.url))
        second.start()
        await receiver.wait_for({event.id for event in events})
        await second.aclose()
    ids = receiver.ids()
    assert ids[0] == events[0].id  # read once before the shutdown, then again
    assert ids[1:] == [event.id for event in events]


class BrokenQueue:
    """A local queue on a disk that refuses every write (fault injection)."""

    description = "broken disk"
    limit = 10

    async def append(self, payloads: Sequence[bytes]) -> int:
        raise QueueError("database or disk is full")

    async def claim(self, ttl: float) -> Lease | None:
        raise QueueError("database or disk is full")

    async def peek(self, limit: int) -> list[QueuedEvent]:
        raise QueueError("database or disk is full")

    async def remove(self, keys: Sequence[str]) -> None:
        raise QueueError("database or disk is full")

    async def size(self) -> int:
        raise QueueError("database or disk is full")

    async def aclose(self) -> None:
        return None


async def test_a_failing_queue_is_logged_and_counted_and_the_emit_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with WebhookReceiver() as receiver:
        broken = Endpoint(
            name="broken", sink=HttpSink(receiver.url), queue=EndpointQueue(BrokenQueue())
        )
        hub = Dispatcher([broken, endpoint(tmp_path, "fine", receiver.url)], poll_interval=0.05)
        hub.start()
        event = blob_event(1)
        with caplog.at_level("WARNING", logger="mirror.events"):
            await hub.emit(event)  # does not raise
            await receiver.wait_for({event.id})
            await asyncio.sleep(0.1)
        await hub.aclose()
    assert hub.stats()["broken"].errors == 1
    assert hub.stats()["fine"].delivered == 1
    messages = [record.getMessage() for record in caplog.records]
    assert any("could not queue event" in message for message in messages)
    assert any("cannot read broken disk" in message for message in messages)


async def test_a_slow_endpoint_times_out_and_is_retried(tmp_path: Path) -> None:
    async with WebhookReceiver() as receiver:
        receiver.hold()
        hub = dispatcher(endpoint(tmp_path, "hook", receiver.url, timeout=0.2))
        hub.start()
        event = blob_event(1)
        await hub.emit(event)
        await eventually(lambda: hub.stats()["hook"].failed >= 1, what="a timed-out attempt")
        assert "Timeout" in hub.stats()["hook"].last_error
        receiver.release()
        await eventually(lambda: hub.stats()["hook"].delivered == 1, what="the delivery")
        await hub.aclose()


def test_endpoint_urls_and_names_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="http"):
        HttpSink("ftp://example.com/x")
    for bad in ({"X-Token": ("caf\u00e9",)}, {"X-Token": ("a\r\nX-Evil: 1",)}):
        with pytest.raises(ValueError, match="single-line ASCII"):
            HttpSink("http://127.0.0.1/", headers=bad)
    with pytest.raises(ValueError, match="unique"):
        build_dispatcher(
            [EndpointSettings("a", "http://127.0.0.1/"), EndpointSettings("a", "http://x/")],
            directory=tmp_path,
        )
