"""Copying a download into the store without stalling the event loop on the way.

The upstream's bytes arrive in small pieces (~64 KiB); they are gathered into batches of
up to CHUNK_SIZE and handed to a consumer task through a short queue, so receiving the
next batch overlaps with hashing and writing the last one (both run in worker threads,
in parallel, outside the GIL). Readers are told after every batch. The first bytes go
out in small batches so the first client sees them at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Protocol

from mirror.cache.fills.fill import Fill
from mirror.store.blobs import BlobIngest
from mirror.store.ingest.staging import CHUNK_SIZE

FLUSH_INTERVAL = 0.05  # seconds: how stale the readers' view of a slow download may be
EAGER_BYTES = 256 * 1024  # hand on every piece until this much has arrived
QUEUE_DEPTH = 4  # batches in flight between receiving and writing


class StallError(Exception):
    """A download stopped moving."""


class Chunks(Protocol):
    def __aiter__(self) -> AsyncIterator[bytes]: ...


async def pump(
    fill: Fill,
    source: Chunks,
    ingest: BlobIngest,
    *,
    stall_timeout: float,
    received: Callable[[int], None],
) -> None:
    """Copy `source` into `ingest`, keeping `fill.available` and `fill.flushed` current.

    Raises StallError when no byte moves for `stall_timeout` seconds (a hung upstream
    or a hung disk), so that a download never holds its lease forever.
    """
    queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=QUEUE_DEPTH)
    consumer = asyncio.create_task(_consume(queue, ingest, fill))
    loop = asyncio.get_running_loop()
    batch: list[bytes] = []
    pending = total = 0
    handed = time.monotonic()
    try:
        async with asyncio.timeout(stall_timeout) as watchdog:
            async for chunk in source:
                batch.append(chunk)
                pending += len(chunk)
                total += len(chunk)
                received(len(chunk))
                now = time.monotonic()
                if pending >= CHUNK_SIZE or total <= EAGER_BYTES or now - handed > FLUSH_INTERVAL:
                    await _hand(queue, consumer, _joined(batch))
                    batch, pending, handed = [], 0, now
                watchdog.reschedule(loop.time() + stall_timeout)
                # Socket reads return at once while the upstream is fast: let readers
                # and the writer run between reads.
                await asyncio.sleep(0)
            if batch:
                await _hand(queue, consumer, _joined(batch))
            await _hand(queue, consumer, None)
            await consumer
    except TimeoutError:
        raise StallError(
            f"download of {fill.digest} made no progress for {stall_timeout:g}s"
        ) from None
    finally:
        if not consumer.done():
            consumer.cancel()
            await asyncio.gather(consumer, return_exceptions=True)


def _joined(batch: list[bytes]) -> bytes:
    return batch[0] if len(batch) == 1 else b"".join(batch)


async def _hand(
    queue: asyncio.Queue[bytes | None], consumer: asyncio.Task[None], item: bytes | None
) -> None:
    if consumer.done():  # it failed (a write error): raise that, do not wait on a full queue
        consumer.result()
        raise RuntimeError("the writer of a download stopped early")
    await queue.put(item)


async def _consume(queue: asyncio.Queue[bytes | None], ingest: BlobIngest, fill: Fill) -> None:
    while (data := await queue.get()) is not None:
        fill.remember(ingest.size, data)  # readers may send it while it is written
        fill.notify()
        await asyncio.sleep(0)  # readers first
        await ingest.write(data)
        await ingest.flush()
        fill.on_disk(ingest.size)
        fill.notify()
