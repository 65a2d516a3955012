"""Readers follow a download as it grows, and never get a blob as complete unverified."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from pathlib import Path

import pytest

from mirror.cache.fills.fill import Fill
from mirror.cache.fills.follow import follow
from mirror.digests import Digest
from mirror.proxy.blobresponse import SEND_PIECE
from mirror.store.blobs import BlobIngest, BlobStore
from mirror.store.drivers import create_driver
from mirror.store.ingest.memory import MemoryStaging

pytestmark = pytest.mark.anyio

DATA = bytes(range(256)) * 8192  # 2 MiB


@pytest.fixture(params=["filesystem", "inmemory"])
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    params = {"rootdirectory": str(tmp_path)} if request.param == "filesystem" else {}
    return BlobStore(create_driver(request.param, params))


async def started(blobs: BlobStore, *, remote: bool = False) -> tuple[Fill, BlobIngest]:
    digest = Digest.of(DATA)
    fill = Fill(digest)
    ingest = await blobs.ingest(digest)
    if remote:
        fill.following()
    fill.streaming(len(DATA), ingest.locator)
    return fill, ingest


async def write(fill: Fill, ingest: BlobIngest, data: bytes) -> None:
    await ingest.write(data)
    await ingest.flush()
    fill.on_disk(ingest.size)
    fill.notify()


async def collect(reader: AsyncGenerator[bytes, None], into: list[bytes]) -> None:
    async for chunk in reader:
        into.append(chunk)


async def test_reader_follows_growth_and_waits_for_verification(blobs: BlobStore) -> None:
    fill, ingest = await started(blobs)
    got: list[bytes] = []
    task = asyncio.create_task(collect(follow(fill, 0, len(DATA), blobs, 0.01), got))
    await write(fill, ingest, DATA[: 1 << 20])
    await asyncio.sleep(0.05)
    assert b"".join(got) == DATA[: 1 << 20]
    await write(fill, ingest, DATA[1 << 20 :])
    await asyncio.sleep(0.05)
    assert b"".join(got) == DATA[:-1]  # everything but the last byte
    assert not task.done()
    await ingest.verify(len(DATA))
    fill.verified(ingest.size)
    await asyncio.wait_for(task, 5)
    assert b"".join(got) == DATA
    await ingest.commit()


async def test_partial_reads_come_in_pieces_the_server_sends_uncut(blobs: BlobStore) -> None:
    """Bytes read from the partial reach the server in pieces of at most SEND_PIECE, so
    none is copied to be cut (and their buffers stay under the mmap threshold)."""
    fill, ingest = await started(blobs)
    await write(fill, ingest, DATA)
    await ingest.verify(len(DATA))
    fill.verified(ingest.size)
    got: list[bytes] = []
    await collect(follow(fill, 5, len(DATA), blobs, 0.01), got)
    assert b"".join(got) == DATA[5:]
    assert max(map(len, got)) == SEND_PIECE
    await ingest.commit()


async def test_reader_from_an_offset_after_commit(blobs: BlobStore) -> None:
    fill, ingest = await started(blobs)
    await write(fill, ingest, DATA)
    await ingest.commit(len(DATA))
    fill.stored()
    got: list[bytes] = []
    await collect(follow(fill, 1000, len(DATA), blobs, 0.01), got)
    assert b"".join(got) == DATA[1000:]


async def test_reader_gives_up_when_the_download_fails(blobs: BlobStore) -> None:
    fill, ingest = await started(blobs)
    got: list[bytes] = []
    task = asyncio.create_task(collect(follow(fill, 0, len(DATA), blobs, 0.01), got))
    await write(fill, ingest, DATA[:1000])
    await asyncio.sleep(0.05)
    fill.fail(RuntimeError("digest mismatch"))
    with pytest.raises(OSError, match="failed"):
        await asyncio.wait_for(task, 5)
    await ingest.cancel()


async def test_reader_gives_up_when_the_download_restarts(blobs: BlobStore) -> None:
    fill, ingest = await started(blobs, remote=True)
    got: list[bytes] = []
    task = asyncio.create_task(collect(follow(fill, 0, len(DATA), blobs, 0.01), got))
    await write(fill, ingest, DATA[:1000])
    await asyncio.sleep(0.05)
    await ingest.cancel()
    again = await blobs.ingest(fill.digest)
    fill.take_over(abandoned=False)  # its holder ended it; another took over
    fill.streaming(len(DATA), again.locator)
    with pytest.raises(OSError, match="restarted"):
        await asyncio.wait_for(task, 5)
    assert b"".join(got) == DATA[:1000]
    await again.cancel()


async def test_reader_carries_on_when_the_download_was_abandoned(blobs: BlobStore) -> None:
    fill, ingest = await started(blobs, remote=True)
    got: list[bytes] = []
    task = asyncio.create_task(collect(follow(fill, 0, len(DATA), blobs, 0.01), got))
    await write(fill, ingest, DATA[:1000])
    await asyncio.sleep(0.05)
    assert b"".join(got) == DATA[:1000]
    await ingest.cancel()  # as if its holder died: what it wrote is the same content
    fill.take_over(abandoned=True)
    again = await blobs.ingest(fill.digest)
    fill.streaming(len(DATA), again.locator)
    await write(fill, again, DATA[:500])
    await asyncio.sleep(0.05)
    assert b"".join(got) == DATA[:1000]  # the new download has not caught up yet
    await write(fill, again, DATA[500:])
    await again.verify(len(DATA))
    fill.verified(again.size)
    await asyncio.wait_for(task, 5)
    assert b"".join(got) == DATA
    await again.commit()


async def test_readers_that_keep_up_read_from_memory(blobs: BlobStore) -> None:
    fill, ingest = await started(blobs)
    first, rest = DATA[: 1 << 20], DATA[1 << 20 :]
    await write(fill, ingest, first)
    fill.remember(0, first)
    reader = follow(fill, 0, len(DATA), blobs, 0.01)
    assert await reader.__anext__() is first  # the very batch: no read back, no copy
    await write(fill, ingest, rest)
    fill.remember(len(first), rest)
    await ingest.verify(len(DATA))
    fill.verified(ingest.size)
    tail = [chunk async for chunk in reader]
    assert first + b"".join(tail) == DATA
    await ingest.commit()


async def test_bytes_reach_readers_before_they_are_on_disk(blobs: BlobStore) -> None:
    fill, ingest = await started(blobs)
    first = DATA[:5000]
    fill.remember(0, first)  # handed over by the download, not written yet
    fill.notify()
    reader = follow(fill, 0, len(DATA), blobs, 0.01)
    assert await reader.__anext__() == first
    assert fill.flushed == 0
    await reader.aclose()
    await ingest.cancel()


async def test_a_range_holds_back_its_own_last_byte_until_verification(blobs: BlobStore) -> None:
    fill, ingest = await started(blobs)
    await write(fill, ingest, DATA)
    got: list[bytes] = []
    task = asyncio.create_task(collect(follow(fill, 100, 1000, blobs, 0.01), got))
    await asyncio.sleep(0.05)
    assert b"".join(got) == DATA[100:999]
    assert not task.done()
    await ingest.verify(len(DATA))
    fill.verified(ingest.size)
    await asyncio.wait_for(task, 5)
    assert b"".join(got) == DATA[100:1000]
    await ingest.commit()


async def test_a_laggard_waits_for_the_stored_blob_when_the_partial_is_not_kept() -> None:
    driver = create_driver("inmemory", {})
    blobs = BlobStore(driver, staging=MemoryStaging(driver, keep=1 << 20))
    fill, ingest = await started(blobs)
    await write(fill, ingest, DATA)  # 2 MiB: more than is kept, and nothing in memory
    got: list[bytes] = []
    task = asyncio.create_task(collect(follow(fill, 0, len(DATA), blobs, 0.01), got))
    await asyncio.sleep(0.05)
    assert got == [] and not task.done()
    await ingest.commit(len(DATA))
    fill.stored()
    await asyncio.wait_for(task, 5)
    assert b"".join(got) == DATA
