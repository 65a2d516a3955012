"""Blob downloads through DistributionClient: raw streaming, ranges, broken and wrong bodies."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from mirror.digests import Digest
from mirror.registryhttp.client import DistributionClient
from mirror.registryhttp.errors import UpstreamContentError, UpstreamNotFound, UpstreamUnavailable
from tests.support.fakeregistry import (
    BLOB,
    BLOB_DIGEST,
    REPO,
    BreakingStream,
    FakeRegistry,
    answering,
    opened,
    read_all,
)


@pytest.mark.anyio
async def test_blob_streams_raw_bytes_with_size() -> None:
    fake = FakeRegistry(auth=None)
    async with opened(fake.client(blob_chunk_size=100_000)) as client:
        blob = await client.open_blob(REPO, BLOB_DIGEST)
        assert (blob.size, blob.length, blob.status, blob.offset) == (len(BLOB), len(BLOB), 200, 0)
        chunks = [chunk async for chunk in blob]
        await blob.aclose()
        await blob.aclose()
    assert b"".join(chunks) == BLOB
    assert [len(c) for c in chunks] == [100_000, 100_000, 100_000]
    with pytest.raises(RuntimeError, match="once"):
        blob.__aiter__()


@pytest.mark.anyio
async def test_blob_content_encoding_is_not_decoded() -> None:
    stored = gzip.compress(b"a layer tarball" * 1000)
    digest = Digest.of(stored)
    fake = FakeRegistry(auth=None)
    fake.override = answering(
        httpx.Response(200, content=stored, headers={"content-encoding": "gzip"})
    )
    async with opened(fake.client()) as client, await client.open_blob(REPO, digest) as blob:
        assert b"".join([c async for c in blob]) == stored
    assert fake.requests[0].headers["accept-encoding"] == "identity"


@pytest.mark.anyio
async def test_disconnect_mid_body_is_unavailable_and_not_retried() -> None:
    fake = FakeRegistry(auth=None)
    fake.override = answering(
        httpx.Response(
            200, headers={"content-length": str(len(BLOB))}, stream=BreakingStream(BLOB[:1000])
        )
    )
    async with opened(fake.client(retries=3, blob_chunk_size=500)) as client:
        blob = await client.open_blob(REPO, BLOB_DIGEST)
        got = bytearray()
        with pytest.raises(UpstreamUnavailable, match="after 1000 bytes"):
            async for chunk in blob:
                got += chunk
        await blob.aclose()
    assert got == BLOB[:1000]
    assert len(fake.requests) == 1


@pytest.mark.anyio
async def test_blob_with_wrong_content_is_a_content_error_at_the_end() -> None:
    fake = FakeRegistry(auth=None)
    corrupt = bytes([BLOB[0] ^ 1]) + BLOB[1:]
    fake.override = answering(httpx.Response(200, content=corrupt))
    async with opened(fake.client()) as client:
        with pytest.raises(UpstreamContentError, match="hashes to"):
            await read_all(client)
        assert await read_all(client, verify=False) == corrupt


@pytest.mark.anyio
async def test_blob_shorter_than_announced_is_a_content_error() -> None:
    fake = FakeRegistry(auth=None)
    fake.override = answering(
        httpx.Response(200, headers={"content-length": str(len(BLOB))}, content=BLOB[:-1])
    )
    async with opened(fake.client()) as client:
        with pytest.raises(UpstreamContentError, match="expected 300000"):
            await read_all(client, verify=False)


@pytest.mark.anyio
async def test_blob_range_requires_206() -> None:
    fake = FakeRegistry(auth=None)
    async with opened(fake.client()) as client:
        blob = await client.open_blob(REPO, BLOB_DIGEST, 1000)
        async with blob:
            assert b"".join([c async for c in blob]) == BLOB[1000:]
        assert (blob.size, blob.length, blob.status, blob.offset) == (
            len(BLOB),
            len(BLOB) - 1000,
            206,
            1000,
        )
        assert fake.requests[-1].headers["range"] == "bytes=1000-"
        with pytest.raises(ValueError, match="negative"):
            await client.open_blob(REPO, BLOB_DIGEST, -1)

        cases = [
            httpx.Response(200, content=BLOB),  # Range ignored
            httpx.Response(206, headers={"content-range": "bytes 0-99/300000"}, content=b"x"),
            httpx.Response(206, headers={"content-range": "bytes */300000"}, content=b""),
            httpx.Response(206, content=b"x"),
        ]
        for response in cases:
            fake.override = answering(response)
            with pytest.raises(UpstreamUnavailable, match=r"status 200|Content-Range"):
                await client.open_blob(REPO, BLOB_DIGEST, 1000)

        fake.override = answering(
            httpx.Response(206, headers={"content-range": "bytes 5-9/*"}, content=BLOB[5:10])
        )
        async with await client.open_blob(REPO, BLOB_DIGEST, 5) as blob:
            assert (blob.size, blob.length) == (None, 5)
            assert b"".join([c async for c in blob]) == BLOB[5:10]

        fake.override = answering(httpx.Response(206, content=BLOB))
        with pytest.raises(UpstreamUnavailable, match="unexpected status 206"):
            await client.open_blob(REPO, BLOB_DIGEST)


@pytest.mark.anyio
async def test_blob_opening_is_retried_before_the_first_byte() -> None:
    fake = FakeRegistry(auth=None)
    fake.override = lambda r: httpx.Response(503) if len(fake.requests) == 1 else None
    async with opened(fake.client()) as client:
        assert await read_all(client) == BLOB
    assert len(fake.requests) == 2


@pytest.mark.anyio
async def test_head_blob_reports_size_and_404() -> None:
    digest = Digest.of(b"hello")

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.method == "HEAD"
        if request.url.path.endswith(str(digest)):
            return httpx.Response(200, headers={"Content-Length": "5"})
        return httpx.Response(404)

    client = DistributionClient("http://upstream.test", transport=httpx.MockTransport(handler))
    try:
        assert await client.head_blob("x", digest) == 5
        with pytest.raises(UpstreamNotFound):
            await client.head_blob("x", Digest.of(b"other"))
    finally:
        await client.aclose()


@pytest.mark.anyio
async def test_numbers_in_headers_are_ascii_digits_only() -> None:
    """str.isdigit() also says yes to '٤٢' (and int() reads it as 42)."""
    arabic = "\u0664\u0662".encode()

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, headers=[(b"content-length", arabic), (b"ratelimit-limit", arabic)]
        )

    client = DistributionClient("http://upstream.test", transport=httpx.MockTransport(handler))
    try:
        assert await client.head_blob("x", Digest.of(b"hello")) is None
        assert client.ratelimit is None
    finally:
        await client.aclose()


class Drip(httpx.AsyncByteStream):
    """`pieces` of `size` bytes, each after `delay` seconds."""

    def __init__(self, pieces: int, size: int, delay: float) -> None:
        self.pieces, self.size, self.delay = pieces, size, delay

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.pieces):
            await asyncio.sleep(self.delay)
            yield b"d" * self.size


async def drained(blob: Any, pause: float = 0.0) -> int:
    received = 0
    async for chunk in blob:
        received += len(chunk)
        if pause:
            await asyncio.sleep(pause)
    return received


@pytest.mark.anyio
async def test_a_slow_drip_body_fails_after_one_window() -> None:
    """One 1 KiB/s upstream connection must not tie every reader of a blob to it for
    ever (issue 8, low): below the minimum rate for a window of waiting, it fails."""
    fake = FakeRegistry(auth=None)
    fake.override = lambda request: httpx.Response(200, stream=Drip(1000, 100, 0.02))
    options = {"blob_min_rate": 100_000, "blob_rate_window": 0.3}
    async with opened(fake.client(**options)) as client:
        blob = await client.open_blob(REPO, BLOB_DIGEST)
        with pytest.raises(UpstreamUnavailable, match="slower than"):
            await drained(blob)
        await blob.aclose()
        assert blob.received < 100_000


@pytest.mark.anyio
async def test_a_slow_reader_is_not_taken_for_a_slow_upstream() -> None:
    fake = FakeRegistry(auth=None)
    fake.override = lambda request: httpx.Response(200, stream=Drip(4, 50_000, 0))
    options = {"blob_min_rate": 100_000, "blob_rate_window": 0.1}
    async with (
        opened(fake.client(**options)) as client,
        await client.open_blob(REPO, BLOB_DIGEST, verify=False) as blob,
    ):
        assert await drained(blob, pause=0.15) == 200_000


@pytest.mark.anyio
async def test_a_body_deadline_bounds_the_whole_transfer() -> None:
    fake = FakeRegistry(auth=None)
    fake.override = lambda request: httpx.Response(200, stream=Drip(100, 10_000, 0.01))
    async with opened(fake.client(blob_deadline=0.2)) as client:
        blob = await client.open_blob(REPO, BLOB_DIGEST)
        with pytest.raises(UpstreamUnavailable, match=r"not done after 0\.2s"):
            await drained(blob)
        await blob.aclose()
