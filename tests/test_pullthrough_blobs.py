from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from mirror.digests import Digest
from tests.support.asgiserver import serving
from tests.support.oci import push_blob, random_bytes
from tests.support.smallfs import small_filesystem
from tests.support.upstreams import MirrorRig, make_rig

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["inmemory", "filesystem"])
async def rig(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MirrorRig]:
    rig = make_rig(driver=request.param, root=str(tmp_path / "store"))
    yield rig
    await rig.aclose()


async def _stored(rig: MirrorRig, digest: str) -> bool:
    return await rig.store.blobs.exists(Digest.parse(digest))


async def test_blob_pull_through_and_hit(rig: MirrorRig) -> None:
    data = random_bytes(3 * 1024 * 1024 + 17, 1)
    digest = await push_blob(rig.upstream, "library/app", data)
    r = await rig.mirror.get(f"/v2/app/blobs/{digest}")
    assert r.status_code == 200 and r.content == data
    assert r.headers["docker-content-digest"] == digest
    assert r.headers["content-length"] == str(len(data))
    await rig.fills.drain()
    assert await _stored(rig, digest)
    r = await rig.mirror.get(f"/v2/app/blobs/{digest}", headers={"Range": "bytes=10-19"})
    assert r.status_code == 206 and r.content == data[10:20]
    assert rig.transport.count("GET", "/blobs/") == 1
    assert rig.metrics.counter("mirror_cache_hits_total", "", ("kind",)).get("blob") == 1


async def test_concurrent_clients_make_one_upstream_get(rig: MirrorRig) -> None:
    data = random_bytes(5 * 1024 * 1024, 2)
    digest = await push_blob(rig.upstream, "library/app", data)
    rig.transport.slow = (0.002, 256 * 1024)
    results = await asyncio.gather(*[rig.mirror.get(f"/v2/app/blobs/{digest}") for _ in range(8)])
    assert all(r.status_code == 200 and r.content == data for r in results)
    assert rig.transport.count("GET", "/blobs/") == 1
    coalesced = rig.metrics.counter("mirror_coalesced_waiters_total", "").get()
    assert coalesced == 7


async def test_first_bytes_arrive_before_the_download_ends(rig: MirrorRig) -> None:
    data = random_bytes(4 * 1024 * 1024, 3)
    digest = await push_blob(rig.upstream, "library/app", data)
    rig.transport.slow = (0.02, 128 * 1024)  # ~0.65 s for the whole blob
    # A real server: httpx's in-process ASGI transport would buffer the whole response.
    async with (
        serving(rig.app) as url,
        httpx.AsyncClient(base_url=url) as client,
        client.stream("GET", f"/v2/app/blobs/{digest}") as r,
    ):
        assert r.status_code == 200
        chunks = r.aiter_raw()
        first = await chunks.__anext__()
        assert first
        # The upstream has not finished: the blob is not stored yet.
        assert not await _stored(rig, digest)
        rest = b"".join([c async for c in chunks])
    assert first + rest == data


async def test_fill_survives_client_disconnect(rig: MirrorRig) -> None:
    data = random_bytes(2 * 1024 * 1024, 4)
    digest = await push_blob(rig.upstream, "library/app", data)
    rig.transport.slow = (0.005, 128 * 1024)
    async with serving(rig.app) as url, httpx.AsyncClient(base_url=url) as client:
        async with client.stream("GET", f"/v2/app/blobs/{digest}") as r:
            await r.aiter_raw().__anext__()
        assert not await _stored(rig, digest)
    for _ in range(200):
        if await _stored(rig, digest):
            break
        await asyncio.sleep(0.02)
    assert await _stored(rig, digest)
    rig.transport.slow = None
    r = await rig.mirror.get(f"/v2/app/blobs/{digest}")
    assert r.content == data
    assert rig.transport.count("GET", "/blobs/") == 1


async def _read_all(client: httpx.AsyncClient, url: str) -> bytes:
    async with client.stream("GET", url) as r:
        assert r.status_code == 200
        return b"".join([c async for c in r.aiter_raw()])


async def test_corrupt_upstream_blob_is_never_served_complete_or_stored(rig: MirrorRig) -> None:
    data = random_bytes(1024 * 1024 + 5, 5)
    digest = await push_blob(rig.upstream, "library/app", data)
    rig.transport.corrupt_blobs = True
    async with serving(rig.app) as url, httpx.AsyncClient(base_url=url) as client:
        # The response is aborted (short body), never completed with the wrong bytes.
        with pytest.raises(httpx.RemoteProtocolError):
            body = await _read_all(client, f"/v2/app/blobs/{digest}")
            assert hashlib.sha256(body).hexdigest() == digest.split(":")[1]
    await rig.fills.drain()
    assert not await _stored(rig, digest)
    failed = rig.metrics.counter("mirror_fills_total", "", ("result",)).get("failed")
    assert failed == 1
    rig.transport.corrupt_blobs = False
    assert (await rig.mirror.get(f"/v2/app/blobs/{digest}")).content == data


async def test_truncated_upstream_blob_is_not_committed(rig: MirrorRig) -> None:
    data = random_bytes(3 * 1024 * 1024, 6)
    digest = await push_blob(rig.upstream, "library/app", data)
    rig.transport.cut_blobs_at = 1024 * 1024 + 3
    async with serving(rig.app) as url, httpx.AsyncClient(base_url=url) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await _read_all(client, f"/v2/app/blobs/{digest}")
    await rig.fills.drain()
    assert not await _stored(rig, digest)
    rig.transport.cut_blobs_at = None
    assert (await rig.mirror.get(f"/v2/app/blobs/{digest}")).content == data


async def test_unknown_blob_is_404_and_negatively_cached(rig: MirrorRig) -> None:
    digest = "sha256:" + "0" * 64
    for _ in range(3):
        r = await rig.mirror.get(f"/v2/app/blobs/{digest}")
        assert r.status_code == 404 and r.json()["errors"][0]["code"] == "BLOB_UNKNOWN"
    assert rig.transport.count("GET", "/blobs/") == 1


async def test_blob_linked_into_each_repository_that_asks(rig: MirrorRig) -> None:
    data = b"shared base layer"
    digest = await push_blob(rig.upstream, "library/one", data)
    await push_blob(rig.upstream, "library/two", data)
    assert (await rig.mirror.get(f"/v2/one/blobs/{digest}")).content == data
    assert (await rig.mirror.get(f"/v2/two/blobs/{digest}")).content == data
    assert rig.transport.count("GET", "/blobs/") == 1
    two = rig.store.repository("docker.io/library/two")
    await rig.fills.drain()  # linked once the download is committed, just after it is served
    assert await two.blobs.is_linked(Digest.parse(digest))


async def test_served_bytes_are_counted_by_source(rig: MirrorRig) -> None:
    data = random_bytes(100_000, 7)
    digest = await push_blob(rig.upstream, "library/app", data)
    await rig.mirror.get(f"/v2/app/blobs/{digest}")
    await rig.fills.drain()
    await rig.mirror.get(f"/v2/app/blobs/{digest}")
    served = rig.metrics.counter("mirror_served_bytes_total", "", ("source", "upstream"))
    assert served.get("download", "docker.io") == len(data)
    assert served.get("store", "docker.io") == len(data)
    upstream = rig.metrics.counter("mirror_upstream_bytes_total", "")
    assert upstream.get() == len(data)
    by_upstream = rig.metrics.counter("mirror_upstream_blob_bytes_total", "", ("upstream",))
    assert by_upstream.get("docker.io") == len(data)


async def test_head_of_uncached_blob_downloads_nothing(rig: MirrorRig) -> None:
    data = random_bytes(300_000, 8)
    digest = await push_blob(rig.upstream, "library/app", data)
    r = await rig.mirror.head(f"/v2/app/blobs/{digest}")
    assert r.status_code == 200 and r.content == b""
    assert r.headers["content-length"] == str(len(data))
    assert r.headers["docker-content-digest"] == digest
    assert rig.transport.log == [("HEAD", f"/v2/library/app/blobs/{digest}")]
    assert not await _stored(rig, digest)
    r = await rig.mirror.head("/v2/app/blobs/sha256:" + "2" * 64)
    assert r.status_code == 404
    await rig.mirror.get(f"/v2/app/blobs/{digest}")
    await rig.fills.drain()  # the blob is linked once its download is stored
    rig.transport.log.clear()
    r = await rig.mirror.head(f"/v2/app/blobs/{digest}")
    assert r.headers["content-length"] == str(len(data))
    assert rig.transport.log == []


async def test_stalled_download_is_abandoned_and_retried(tmp_path: Path) -> None:
    rig = make_rig(stall_timeout=0.3)
    try:
        data = random_bytes(2 * 1024 * 1024, 10)
        digest = await push_blob(rig.upstream, "library/app", data)
        rig.transport.stall_blobs_at = 512 * 1024
        rig.transport.slow = (0.0, 256 * 1024)  # the first piece reaches the client
        async with serving(rig.app) as url, httpx.AsyncClient(base_url=url) as client:
            with pytest.raises(httpx.RemoteProtocolError):
                await _read_all(client, f"/v2/app/blobs/{digest}")
        failed = rig.metrics.counter("mirror_fills_total", "", ("result",)).get("failed")
        assert failed == 1
        assert not await _stored(rig, digest)
        rig.transport.stall_blobs_at = None
        assert (await rig.mirror.get(f"/v2/app/blobs/{digest}")).content == data
    finally:
        await rig.aclose()


async def test_a_download_stalled_before_its_first_byte_is_unavailable() -> None:
    rig = make_rig(stall_timeout=0.3)
    try:
        data = random_bytes(100_000, 13)
        digest = await push_blob(rig.upstream, "library/app", data)
        rig.transport.stall_blobs_at = 0
        r = await rig.mirror.get(f"/v2/app/blobs/{digest}")
        assert r.status_code == 503 and r.json()["errors"][0]["code"] == "UNAVAILABLE"
    finally:
        await rig.aclose()


class _Silent(httpx.AsyncByteStream):
    """Headers sent, then no byte: the read times out (as httpx's read timeout would)."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        await asyncio.sleep(0.2)
        raise httpx.ReadTimeout("no byte (injected)")
        yield b""  # pragma: no cover - makes this an async generator


async def test_an_upstream_that_hangs_after_the_headers_is_unavailable() -> None:
    """Not a 200 whose body never comes (granian turns that into its plain-text 500):
    the answer waits for the first byte, so a failure before it is UNAVAILABLE."""
    rig = make_rig()
    try:
        data = random_bytes(100_000, 11)
        digest = await push_blob(rig.upstream, "library/app", data)

        def silent(request: httpx.Request) -> httpx.Response | None:
            if request.method == "GET" and "/blobs/" in request.url.path:
                headers = {"Content-Length": str(len(data))}
                return httpx.Response(200, headers=headers, stream=_Silent())
            return None

        rig.transport.fault = silent
        r = await rig.mirror.get(f"/v2/app/blobs/{digest}")
        assert r.status_code == 503 and r.json()["errors"][0]["code"] == "UNAVAILABLE"
        rig.transport.fault = None
        assert (await rig.mirror.get(f"/v2/app/blobs/{digest}")).content == data
    finally:
        await rig.aclose()


async def test_a_slow_drip_upstream_does_not_hold_a_download_for_ever() -> None:
    rig = make_rig(blob_min_rate=1_000_000, blob_rate_window=0.2)
    try:
        data = random_bytes(1024 * 1024, 12)
        digest = await push_blob(rig.upstream, "library/app", data)
        rig.transport.slow = (0.01, 1000)  # 100 KB/s: ten seconds for the blob
        async with serving(rig.app) as url, httpx.AsyncClient(base_url=url) as client:
            with pytest.raises(httpx.RemoteProtocolError):
                await _read_all(client, f"/v2/app/blobs/{digest}")
        await rig.fills.drain()
        failed = rig.metrics.counter("mirror_fills_total", "", ("result",)).get("failed")
        assert failed == 1 and not await _stored(rig, digest)
        rig.transport.slow = None
        assert (await rig.mirror.get(f"/v2/app/blobs/{digest}")).content == data
    finally:
        await rig.aclose()


async def test_proxy_timeouts_blob_bounds_a_whole_download() -> None:
    rig = make_rig(timeouts={"blob": "150ms"})
    try:
        data = random_bytes(1024 * 1024, 13)
        digest = await push_blob(rig.upstream, "library/app", data)
        rig.transport.slow = (0.01, 32 * 1024)  # fast enough for the rate, ~0.3 s: too long
        async with serving(rig.app) as url, httpx.AsyncClient(base_url=url) as client:
            with pytest.raises(httpx.RemoteProtocolError):
                await _read_all(client, f"/v2/app/blobs/{digest}")
        await rig.fills.drain()
        assert not await _stored(rig, digest)
    finally:
        await rig.aclose()


async def test_a_range_of_a_blob_still_downloading_waits_for_verification(rig: MirrorRig) -> None:
    """A range that ends before the blob does must not complete from bytes that are not
    verified yet: here byte 0 is corrupt, which only the whole blob's digest reveals."""
    data = random_bytes(1024 * 1024 + 5, 11)
    digest = await push_blob(rig.upstream, "library/app", data)
    rig.transport.corrupt_blobs = True
    rig.transport.slow = (0.01, 64 * 1024)  # the download takes ~0.2 s
    url = f"/v2/app/blobs/{digest}"
    async with (
        serving(rig.app) as base,
        httpx.AsyncClient(base_url=base) as client,
        client.stream("GET", url) as whole,
    ):
        chunks = whole.aiter_raw()
        await chunks.__anext__()  # the download is under way
        with pytest.raises(httpx.RemoteProtocolError):
            async with client.stream("GET", url, headers={"Range": "bytes=0-4095"}) as r:
                assert r.status_code == 206
                body = b"".join([c async for c in r.aiter_raw()])
                assert body == data[:4096]  # never reached: the range was aborted
        with pytest.raises(httpx.RemoteProtocolError):
            [c async for c in chunks]
    await rig.fills.drain()
    assert not await _stored(rig, digest)
    rig.transport.corrupt_blobs = False
    rig.transport.slow = (0.01, 64 * 1024)
    async with (
        serving(rig.app) as base,
        httpx.AsyncClient(base_url=base) as client,
        client.stream("GET", url) as whole,
    ):
        chunks = whole.aiter_raw()
        await chunks.__anext__()
        r = await client.get(url, headers={"Range": "bytes=10-4095"})
        assert r.status_code == 206 and r.content == data[10:4096]
        rest = [c async for c in chunks]
    assert rest and await _stored(rig, digest)


async def test_two_downloads_that_do_not_both_fit_on_the_disk_let_one_win(tmp_path: Path) -> None:
    """Each blob fits alone, not both: one download is stored, and the other fails at once
    with a clear 507 on every retry, instead of running out of space half way."""
    # Room for one blob and the cache's metadata files beside it, not for both blobs.
    with small_filesystem(tmp_path / "small", 11 * 1024 * 1024) as small:
        rig = make_rig(driver="filesystem", root=str(small / "store"))
        try:
            blobs = [random_bytes(6 * 1024 * 1024, seed) for seed in (21, 22)]
            digests = [await push_blob(rig.upstream, "library/app", data) for data in blobs]
            rig.transport.slow = (0.001, 64 * 1024)  # the two downloads interleave
            await asyncio.gather(
                *(rig.mirror.get(f"/v2/app/blobs/{digest}") for digest in digests),
                return_exceptions=True,
            )
            await rig.fills.drain()
            stored = [await _stored(rig, digest) for digest in digests]
            assert stored.count(True) == 1
            winner = stored.index(True)
            r = await rig.mirror.get(f"/v2/app/blobs/{digests[winner]}")
            assert r.status_code == 200 and r.content == blobs[winner]
            for _ in range(3):
                r = await rig.mirror.get(f"/v2/app/blobs/{digests[1 - winner]}")
                assert r.status_code == 507
                assert r.json()["errors"][0]["code"] == "UNAVAILABLE"
        finally:
            await rig.aclose()
