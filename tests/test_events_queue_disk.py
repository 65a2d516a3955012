"""The shared event queue suite on local disk, and what only the disk queue does."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mirror.events.disk_queue import DiskEventQueue
from mirror.events.queue import EventQueue, QueueError
from tests.event_queue_suite import EventQueueSuite, Queues, payloads

pytestmark = pytest.mark.anyio


@pytest.fixture
async def queues(tmp_path: Path) -> AsyncIterator[Queues]:
    opened: list[EventQueue] = []

    def open_queue(limit: int = 1000) -> EventQueue:
        queue = DiskEventQueue(tmp_path / "queue", limit=limit)
        opened.append(queue)
        return queue

    yield open_queue
    for queue in opened:
        await queue.aclose()


class TestDiskEventQueue(EventQueueSuite):
    pass


HOLD_CLAIM = """
import asyncio, sys
from mirror.events.disk_queue import DiskEventQueue

async def main():
    claim = await DiskEventQueue(sys.argv[1]).claim(60.0)
    print("held" if claim else "busy", flush=True)
    await asyncio.sleep(600)

asyncio.run(main())
"""


async def test_a_killed_holder_s_claim_ends_at_once(tmp_path: Path) -> None:
    queue = DiskEventQueue(tmp_path / "q")
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOLD_CLAIM, str(tmp_path / "q"), stdout=asyncio.subprocess.PIPE
    )
    try:
        assert holder.stdout is not None
        line = await asyncio.wait_for(holder.stdout.readline(), 30)
        assert line.strip() == b"held"
        assert await queue.claim(60.0) is None
        holder.kill()
        await asyncio.wait_for(holder.wait(), 10)
        claim = await queue.claim(60.0)  # no ttl to wait out
        assert claim is not None
        await claim.release()
    finally:
        if holder.returncode is None:
            holder.kill()
            await holder.wait()
        await queue.aclose()


async def test_limits_below_one_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        DiskEventQueue(tmp_path / "q", limit=0)


async def test_a_broken_database_is_a_queue_error(tmp_path: Path) -> None:
    queue = DiskEventQueue(tmp_path / "q")
    await queue.append(payloads(1))
    await queue.aclose()
    (tmp_path / "q" / "cache.db").write_bytes(b"this is not a database" * 100)
    for name in ("cache.db-wal", "cache.db-shm"):
        (tmp_path / "q" / name).unlink(missing_ok=True)
    with pytest.raises(QueueError, match="event queue"):
        broken = DiskEventQueue(tmp_path / "q")
        await broken.append(payloads(1))
