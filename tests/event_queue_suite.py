"""The shared event queue suite, run against every `EventQueue` implementation.

A queue's test module subclasses `EventQueueSuite` and provides a ``queues`` fixture: a
factory ``queues(limit=...)`` that opens a handle on one fresh queue; calling it again
opens another handle on the same queue (another process or replica would), which is how
the suite checks persistence and the claim. Handles are closed by the fixture.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio
import pytest

from mirror.events.queue import EventQueue

Queues = Callable[..., EventQueue]

pytestmark = pytest.mark.anyio


def payloads(n: int, start: int = 0) -> list[bytes]:
    return [f'{{"id":"e{i}"}}'.encode() for i in range(start, start + n)]


class EventQueueSuite:
    async def test_entries_come_out_oldest_first_and_stay_until_removed(
        self, queues: Queues
    ) -> None:
        queue = queues()
        assert await queue.size() == 0
        assert await queue.peek(10) == []
        assert await queue.append(payloads(3)) == 0
        assert await queue.append(payloads(2, start=3)) == 0
        assert await queue.size() == 5
        head = await queue.peek(3)
        assert [entry.payload for entry in head] == payloads(3)
        assert [entry.payload for entry in await queue.peek(3)] == payloads(3)  # peek keeps
        await queue.remove([entry.key for entry in head])
        assert [entry.payload for entry in await queue.peek(10)] == payloads(2, start=3)
        assert await queue.size() == 2

    async def test_remove_is_idempotent_and_touches_nothing_else(self, queues: Queues) -> None:
        queue = queues()
        await queue.append(payloads(4))
        first, second, *_ = await queue.peek(4)
        await queue.remove([second.key])
        await queue.remove([second.key])
        await queue.remove([])
        assert [entry.payload for entry in await queue.peek(10)] == [
            payloads(4)[0],
            *payloads(2, start=2),
        ]
        await queue.remove([first.key, second.key])
        assert await queue.size() == 2

    async def test_bytes_come_back_exactly(self, queues: Queues) -> None:
        queue = queues()
        odd = [b"", b"\x00\xff\r\n", "é✓".encode(), b"x" * 300_000]
        await queue.append(odd)
        assert [entry.payload for entry in await queue.peek(10)] == odd

    async def test_the_limit_drops_the_oldest_and_says_how_many(self, queues: Queues) -> None:
        queue = queues(limit=3)
        assert queue.limit == 3
        assert await queue.append(payloads(2)) == 0
        assert await queue.append(payloads(2, start=2)) == 1
        assert await queue.append(payloads(1, start=4)) == 1
        assert await queue.size() == 3
        assert [entry.payload for entry in await queue.peek(10)] == payloads(3, start=2)

    async def test_more_than_the_limit_at_once_keeps_the_newest(self, queues: Queues) -> None:
        queue = queues(limit=2)
        assert await queue.append(payloads(5)) == 3
        assert [entry.payload for entry in await queue.peek(10)] == payloads(2, start=3)

    async def test_entries_dropped_while_being_delivered_do_not_take_others_along(
        self, queues: Queues
    ) -> None:
        queue = queues(limit=3)
        await queue.append(payloads(3))
        in_flight = await queue.peek(2)
        # While the head is being delivered, new events push it out.
        assert await queue.append(payloads(2, start=3)) == 2
        await queue.remove([entry.key for entry in in_flight])
        assert [entry.payload for entry in await queue.peek(10)] == payloads(3, start=2)

    async def test_entries_survive_reopening(self, queues: Queues) -> None:
        first = queues()
        await first.append(payloads(3))
        await first.aclose()
        again = queues()
        assert [entry.payload for entry in await again.peek(10)] == payloads(3)
        await again.remove([(await again.peek(1))[0].key])
        assert await queues().size() == 2

    async def test_two_handles_append_to_one_queue_in_order(self, queues: Queues) -> None:
        one, two = queues(), queues()
        await one.append(payloads(1))
        await two.append(payloads(1, start=1))
        await one.append(payloads(1, start=2))
        assert [entry.payload for entry in await two.peek(10)] == payloads(3)

    async def test_one_claimant_at_a_time(self, queues: Queues) -> None:
        one, two = queues(), queues()
        claim = await one.claim(5.0)
        assert claim is not None
        assert await two.claim(5.0) is None
        assert await one.claim(5.0) is None  # not even the same handle twice
        await claim.release()
        await claim.release()  # idempotent
        again = await two.claim(5.0)
        assert again is not None
        assert await again.renew()
        assert await one.claim(5.0) is None
        await again.release()

    async def test_a_claim_kept_alive_is_not_taken(self, queues: Queues) -> None:
        one, two = queues(), queues()
        claim = await one.claim(0.3)
        assert claim is not None
        async with claim.keepalive():
            await anyio.sleep(0.5)
            assert await two.claim(0.3) is None
            assert not claim.lost
        taken = await two.claim(0.3)
        assert taken is not None
        await taken.release()
