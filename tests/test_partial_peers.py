"""Followers on another host read a download's spool file from the replica that writes it.

Two replicas share one store (an inmemory driver stands for the bucket) but not their
spool directories; replica B reaches replica A's `/_mirror/partial` through an ASGI
transport (or, for an unreachable holder, a closed loopback port). Whatever goes wrong
between them is PartialGone, which makes a follower wait for the commit.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from mirror.cache.fills.manager import FillManager
from mirror.coordination.leases import LocalCoordinator
from mirror.coordination.metadata import MemoryMetadataStore
from mirror.digests import Digest
from mirror.metrics import MetricsRegistry
from mirror.proxy.partials_api import partials_endpoint
from mirror.store import paths
from mirror.store.blobs import BlobStore
from mirror.store.driver import CHUNK_SIZE
from mirror.store.drivers import create_driver
from mirror.store.ingest import peerwire
from mirror.store.ingest.remote import Cluster, Peers
from mirror.store.ingest.spool import SpoolStaging
from mirror.store.ingest.staging import PartialGone, PartialState
from mirror.store.view import BlobContent
from tests.driver_suite import blob
from tests.support.processes import free_port
from tests.test_ingest import read_all

pytestmark = pytest.mark.anyio

DATA = blob(2 * CHUNK_SIZE + 5)
DIGEST = Digest.of(DATA)
SECRET = "s" * 32
A_URL = "http://replica-a.test"
B_URL = "http://replica-b.test"


def refuse(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


class Replicas:
    def __init__(self, tmp_path: Path, *, b_secret: str = SECRET, holder: str = A_URL) -> None:
        driver = create_driver("inmemory", {})
        a_peers = Peers(Cluster(holder, SECRET))
        self.a = BlobStore(driver, staging=SpoolStaging(driver, str(tmp_path / "a"), a_peers))
        transport = httpx.ASGITransport(app=partials_endpoint(self.a))
        self.b_peers = Peers(Cluster(B_URL, b_secret), transport=transport)
        staging = SpoolStaging(driver, str(tmp_path / "b"), self.b_peers)
        self.b = BlobStore(driver, staging=staging)
        self.spool = tmp_path / "a"


async def test_a_follower_streams_the_holders_partial_then_reads_the_commit(
    tmp_path: Path,
) -> None:
    replicas = Replicas(tmp_path)
    ingest = await replicas.a.ingest(DIGEST)
    assert ingest.locator.endswith("@" + A_URL)
    await ingest.write(DATA[: CHUNK_SIZE + 3])
    reader = await replicas.b.open_partial(DIGEST, ingest.locator)
    assert await read_all(reader) == DATA[: CHUNK_SIZE + 3]
    progress = await reader.progress()
    assert (progress.available, progress.state) == (CHUNK_SIZE + 3, PartialState.WRITING)
    await ingest.write(DATA[CHUNK_SIZE + 3 :])
    assert (await reader.progress()).available == len(DATA)  # the poll sees it grow
    rest = await reader.read(CHUNK_SIZE + 3, len(DATA), CHUNK_SIZE)
    assert [len(piece) for piece in rest] == [CHUNK_SIZE, 2]
    assert b"".join(rest) == DATA[CHUNK_SIZE + 3 :]
    await ingest.commit(len(DATA))
    # The holder's spool file is gone: the store (shared) says the blob is committed.
    while (progress := await reader.progress()).state is PartialState.WRITING:
        pass
    assert progress.state is PartialState.COMMITTED
    with pytest.raises(PartialGone):
        await reader.read(0, 10, 10)
    with pytest.raises(PartialGone):  # a new follower reads the stored blob instead
        await replicas.b.open_partial(DIGEST, ingest.locator)
    await reader.aclose()
    await replicas.b_peers.aclose()


async def test_a_cancelled_download_is_gone_for_its_remote_followers(tmp_path: Path) -> None:
    replicas = Replicas(tmp_path)
    ingest = await replicas.a.ingest(DIGEST)
    await ingest.write(DATA[:100])
    reader = await replicas.b.open_partial(DIGEST, ingest.locator)
    await ingest.cancel()
    while (progress := await reader.progress()).state is PartialState.WRITING:
        pass
    assert progress.state is PartialState.GONE
    await reader.aclose()


async def test_another_secret_is_refused_and_the_follower_falls_back(tmp_path: Path) -> None:
    replicas = Replicas(tmp_path, b_secret="x" * 32)
    ingest = await replicas.a.ingest(DIGEST)
    await ingest.write(DATA[:100])
    with pytest.raises(PartialGone, match="answered 403"):
        await replicas.b.open_partial(DIGEST, ingest.locator)
    # What a registry client meets: no signature 401, a forged or stale one 403.
    name = next(p.name for p in replicas.spool.iterdir()).removesuffix(peerwire.SUFFIX)
    query = {"name": name, "offset": "0", "size": "10"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=partials_endpoint(replicas.a)), base_url=A_URL
    ) as client:
        assert (await client.get(peerwire.PATH, params=query)).status_code == 401
        forged = {peerwire.AUTH: peerwire.sign("y" * 32, name)}
        assert (await client.get(peerwire.PATH, params=query, headers=forged)).status_code == 403
        stale = {peerwire.AUTH: peerwire.sign(SECRET, name, now=time.time() - 3600)}
        assert (await client.get(peerwire.PATH, params=query, headers=stale)).status_code == 403
        far = {peerwire.AUTH: peerwire.sign(SECRET, name, now=time.time() + 3600)}
        assert (await client.get(peerwire.PATH, params=query, headers=far)).status_code == 403
        good = {peerwire.AUTH: peerwire.sign(SECRET, name)}
        answered = await client.get(peerwire.PATH, params=query, headers=good)
        assert answered.status_code == 200 and answered.content == DATA[:10]
        assert answered.headers[peerwire.AVAILABLE] == "100"
        # A signature is for one partial only.
        other = {**query, "name": name[:-1] + ("0" if name[-1] != "0" else "1")}
        assert (await client.get(peerwire.PATH, params=other, headers=good)).status_code == 403
        malformed = [
            {**query, "size": str(peerwire.MAX_READ + 1)},
            {**query, "offset": "-1"},
            {**query, "after": "x"},
            {**query, "size": ""},
            {"name": "../etc/passwd", "offset": "0", "size": "1"},
        ]
        for bad in malformed:
            assert (await client.get(peerwire.PATH, params=bad, headers=good)).status_code == 400
        assert (await client.post(peerwire.PATH, params=query, headers=good)).status_code == 405
    await ingest.cancel()


async def test_an_unreachable_holder_is_gone_at_once(tmp_path: Path) -> None:
    driver = create_driver("inmemory", {})
    holder = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    writer = SpoolStaging(driver, str(tmp_path / "a"), Peers(Cluster(holder, SECRET)))
    follower = SpoolStaging(driver, str(tmp_path / "b"), Peers(Cluster(B_URL, SECRET)))
    path = paths.blob_data(DIGEST)
    write = await writer.create(path)
    await write.write(b"bytes")
    started = time.monotonic()
    with pytest.raises(PartialGone, match="unreachable"):
        await follower.open(path, write.locator)
    assert time.monotonic() - started < 5
    await write.cancel()


async def test_a_holder_that_goes_away_mid_download_is_gone_not_an_error(
    tmp_path: Path,
) -> None:
    replicas = Replicas(tmp_path)
    ingest = await replicas.a.ingest(DIGEST)
    await ingest.write(DATA[:100])
    reader = await replicas.b.open_partial(DIGEST, ingest.locator)
    assert await reader.read(0, 100, 64) == [DATA[:64], DATA[64:100]]

    replicas.b_peers._transport = httpx.MockTransport(refuse)
    replicas.b_peers._client = None  # the next request dials again
    with pytest.raises(PartialGone):
        await reader.progress()
    with pytest.raises(PartialGone):
        await reader.read(100, 10, 10)
    await reader.aclose()
    await ingest.cancel()


async def test_locators_without_a_replica_or_naming_this_one_stay_local(tmp_path: Path) -> None:
    replicas = Replicas(tmp_path)
    ingest = await replicas.a.ingest(DIGEST)
    local_only = ingest.locator.partition("@")[0]
    for locator in (local_only, f"{local_only}@{B_URL}", f"{local_only}@file:///etc"):
        with pytest.raises(PartialGone):
            await replicas.b.open_partial(DIGEST, locator)
    await ingest.cancel()


async def test_a_progress_poll_waits_for_more_bytes_but_not_forever(tmp_path: Path) -> None:
    replicas = Replicas(tmp_path)
    ingest = await replicas.a.ingest(DIGEST)
    await ingest.write(DATA[:100])
    reader = await replicas.b.open_partial(DIGEST, ingest.locator)
    started = time.monotonic()
    assert (await reader.progress()).available == 100
    assert peerwire.WAIT <= time.monotonic() - started < peerwire.WAIT + 2
    await reader.aclose()
    await ingest.cancel()


class Gated:
    """An upstream body: its first half at once, the rest once `go` is set."""

    def __init__(self, data: bytes) -> None:
        self.size: int | None = len(data)
        self.data = data
        self.go = asyncio.Event()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        half = len(self.data) // 2
        yield self.data[:half]
        await self.go.wait()
        yield self.data[half:]

    async def aclose(self) -> None:
        pass


async def read_content(content: BlobContent) -> bytes:
    stream = await content.open(0, content.size)
    return b"".join([chunk async for chunk in stream])


@pytest.mark.parametrize("holder_lost", [False, True])
async def test_a_follower_streams_or_else_waits_for_the_commit(
    tmp_path: Path, holder_lost: bool
) -> None:
    replicas = Replicas(tmp_path)
    coordinator, metadata = LocalCoordinator(), MemoryMetadataStore()
    a = FillManager(replicas.a, coordinator, metadata, poll=0.01, metrics=MetricsRegistry())
    b = FillManager(replicas.b, coordinator, metadata, poll=0.01, metrics=MetricsRegistry())
    source = Gated(DATA)

    async def upstream() -> Gated:
        return source

    async def never() -> Gated:
        raise AssertionError("a second upstream GET")

    first = await a.fetch(DIGEST, upstream)
    followed = await b.fetch(DIGEST, never)  # answered before the download is done
    assert followed.downloading
    stream = await followed.open(0, followed.size)
    head = await anext(stream)  # the holder's first bytes, from its spool file
    assert head == DATA[: len(head)]
    if holder_lost:
        replicas.b_peers._transport = httpx.MockTransport(refuse)
        replicas.b_peers._client = None
        await asyncio.sleep(peerwire.WAIT + 0.5)  # the progress poll under way ends, the next fails
    source.go.set()
    rest = b"".join([chunk async for chunk in stream])
    assert head + rest == DATA
    assert await read_content(first) == DATA
    await a.aclose()
    await b.aclose()
    await replicas.b_peers.aclose()
