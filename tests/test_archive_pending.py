"""The bounded background tasks the import publishes blobs with."""

from __future__ import annotations

import asyncio

import pytest

from mirror.archive.pending import Pending

pytestmark = pytest.mark.anyio


async def test_at_most_limit_run_and_close_waits_for_all() -> None:
    running, most, done = 0, 0, []

    async def work(n: int) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.01)
        running -= 1
        done.append(n)

    pending = Pending(3)
    for n in range(10):
        await pending.add(work(n))
    await pending.close()
    assert most == 3 and sorted(done) == list(range(10))


async def test_a_failure_is_raised_and_the_rest_cancelled() -> None:
    cancelled = asyncio.Event()

    async def fail() -> None:
        raise OSError(28, "No space left on device")

    async def slow() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    pending = Pending(4)
    await pending.add(slow())
    await pending.add(fail())
    await asyncio.sleep(0.01)
    with pytest.raises(OSError, match="No space left"):
        await pending.close()
    assert cancelled.is_set()
