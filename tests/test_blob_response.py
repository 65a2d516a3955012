"""What a slow client of a cached blob makes the server hold.

granian takes up to 32 body messages per connection before `send` waits for the client,
so whatever those messages hold stays pinned while a client does not read. Here a `send`
that behaves that way (and never drains) stands in for granian with an idle client, and
tracemalloc counts what the blocked responses keep alive. Before, a ranged read pinned
a 1 MiB read buffer plus 32 copied 256 KiB pieces, 9 MiB per idle reader (measured
against granian: ~3.4 MB of RSS each, 150 readers +500 MB).
"""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import AsyncGenerator
from pathlib import Path

import pytest

from mirror.digests import Digest
from mirror.proxy.blobresponse import BlobResponse
from mirror.store.view import BlobContent
from tests.support.oci import random_bytes

pytestmark = pytest.mark.anyio

QUEUED = 32  # body messages granian accepts before it waits for the client
READERS = 4
MiB = 1024 * 1024


class IdleClient:
    """An ASGI `send` that keeps the first QUEUED body messages and then blocks."""

    def __init__(self) -> None:
        self.messages: list[object] = []
        self.blocked = asyncio.Event()

    async def __call__(self, message: object) -> None:
        self.messages.append(message)
        if len(self.messages) > QUEUED:
            self.blocked.set()
            await asyncio.sleep(3600)


async def receive() -> dict[str, object]:
    await asyncio.sleep(3600)
    return {}


async def test_an_idle_reader_of_a_cached_range_pins_little(tmp_path: Path) -> None:
    data = random_bytes(64 * MiB, 31)
    path = tmp_path / "blob"
    path.write_bytes(data)
    digest = Digest.of(b"not checked here")

    async def unused(start: int, end: int) -> AsyncGenerator[bytes, None]:
        raise AssertionError("a local blob is sent from its file")

    content = BlobContent(digest, len(data), open=unused, local_path=str(path))
    clients = [IdleClient() for _ in range(READERS)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        responses = [
            asyncio.create_task(
                BlobResponse(content, (1, len(data) - 1), {})(
                    {"type": "http", "extensions": {"http.response.pathsend": {}}},
                    receive,
                    client,
                )
            )
            for client in clients
        ]
        await asyncio.wait_for(asyncio.gather(*(c.blocked.wait() for c in clients)), 30)
        pinned = (tracemalloc.get_traced_memory()[0] - before) / READERS
    finally:
        tracemalloc.stop()
        for response in responses:
            response.cancel()
        await asyncio.gather(*responses, return_exceptions=True)
    sent = b"".join(m["body"] for m in clients[0].messages if isinstance(m, dict) and "body" in m)
    assert data[1:].startswith(sent)
    assert pinned < 5 * MiB, f"{pinned / MiB:.1f} MiB per idle reader"
