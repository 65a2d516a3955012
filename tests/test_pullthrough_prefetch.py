"""Prefetch: a manifest pulled through the mirror starts its missing blobs downloading."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from mirror.cache.pullthrough.prefetch import UNASKED_AFTER, AskTracker, PrefetchMetrics
from mirror.digests import Digest
from mirror.metrics import MetricsRegistry
from mirror.types import OCI_INDEX
from tests.support.oci import index_bytes, push_image, push_manifest
from tests.support.upstreams import MirrorRig, make_rig

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["inmemory", "filesystem"])
async def rig(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MirrorRig]:
    rig = make_rig(driver=request.param, root=str(tmp_path / "store"))
    yield rig
    await rig.aclose()


def _blob_digests(raw: bytes) -> list[str]:
    doc = json.loads(raw)
    return [doc["config"]["digest"], *(layer["digest"] for layer in doc["layers"])]


async def _idle(rig: MirrorRig) -> None:
    prefetcher = rig.resolver.state.prefetcher(rig.source)
    assert prefetcher is not None
    await prefetcher.idle()
    await rig.fills.drain()


def _bytes(rig: MirrorRig, requested: str) -> float:
    return rig.metrics.counter("mirror_prefetch_bytes_total", "", ("requested",)).get(requested)


def _blobs(rig: MirrorRig, result: str) -> float:
    return rig.metrics.counter("mirror_prefetch_blobs_total", "", ("result",)).get(result)


async def test_a_pulled_manifest_caches_its_blobs(rig: MirrorRig) -> None:
    raw, _ = await push_image(rig.upstream, "library/app", "v1", layers=3, layer_size=300_000)
    r = await rig.mirror.get("/v2/app/manifests/v1")
    assert r.status_code == 200
    await _idle(rig)
    digests = _blob_digests(raw)
    for digest in digests:
        assert await rig.store.blobs.exists(Digest.parse(digest))
    assert rig.transport.count("GET", "/blobs/") == len(digests)
    assert _blobs(rig, "fetched") == len(digests)
    # The client's own GETs (whole and ranged, and HEADs) are served from the cache.
    for digest in digests:
        whole = await rig.mirror.get(f"/v2/app/blobs/{digest}")
        assert whole.status_code == 200
        assert Digest.of(whole.content) == Digest.parse(digest)
        part = await rig.mirror.get(f"/v2/app/blobs/{digest}", headers={"Range": "bytes=1-5"})
        assert part.status_code == 206 and part.content == whole.content[1:6]
        head = await rig.mirror.head(f"/v2/app/blobs/{digest}")
        assert head.status_code == 200
        assert head.headers["content-length"] == str(len(whole.content))
    assert rig.transport.count("GET", "/blobs/") == len(digests)
    assert _bytes(rig, "yes") == sum(_sizes(raw))
    assert _bytes(rig, "no") == 0


def _sizes(raw: bytes) -> list[int]:
    doc = json.loads(raw)
    return [doc["config"]["size"], *(layer["size"] for layer in doc["layers"])]


async def test_a_client_get_joins_the_running_prefetch(rig: MirrorRig) -> None:
    raw, _ = await push_image(rig.upstream, "library/app", "v1", layers=2, layer_size=2_000_000)
    rig.transport.slow = (0.01, 128 * 1024)  # each layer takes ~0.16 s
    assert (await rig.mirror.get("/v2/app/manifests/v1")).status_code == 200
    await asyncio.sleep(0.05)  # the prefetch is under way
    digests = _blob_digests(raw)
    results = await asyncio.gather(*(rig.mirror.get(f"/v2/app/blobs/{d}") for d in digests))
    for digest, response in zip(digests, results, strict=True):
        assert response.status_code == 200
        assert Digest.of(response.content) == Digest.parse(digest)
    await _idle(rig)
    for digest in digests:
        assert rig.transport.count("GET", f"/blobs/{digest}") == 1
    assert _bytes(rig, "yes") == sum(_sizes(raw))


async def test_nothing_is_prefetched_when_switched_off(tmp_path: Path) -> None:
    rig = make_rig(prefetch=False)
    try:
        assert rig.resolver.state.prefetcher(rig.source) is None
        await push_image(rig.upstream, "library/app", "v1", layers=2)
        assert (await rig.mirror.get("/v2/app/manifests/v1")).status_code == 200
        await asyncio.sleep(0.05)
        await rig.fills.drain()
        assert rig.transport.count("GET", "/blobs/") == 0
    finally:
        await rig.aclose()


async def test_an_index_prefetches_nothing(rig: MirrorRig) -> None:
    child, _ = await push_image(rig.upstream, "library/app", "child", layers=2)
    index = index_bytes([(child, "application/vnd.oci.image.manifest.v1+json")])
    r = await push_manifest(rig.upstream, "library/app", "multi", index, OCI_INDEX)
    assert r.status_code == 201, r.text
    assert (await rig.mirror.get("/v2/app/manifests/multi")).status_code == 200
    await _idle(rig)
    assert rig.transport.count("GET", "/blobs/") == 0


async def test_cached_blobs_are_not_fetched_again(rig: MirrorRig) -> None:
    raw, _ = await push_image(rig.upstream, "library/app", "v1", layers=2)
    config = _blob_digests(raw)[0]
    assert (await rig.mirror.get(f"/v2/app/blobs/{config}")).status_code == 200
    await rig.fills.drain()
    assert (await rig.mirror.get("/v2/app/manifests/v1")).status_code == 200
    await _idle(rig)
    assert rig.transport.count("GET", f"/blobs/{config}") == 1
    assert rig.transport.count("GET", "/blobs/") == 3
    assert _blobs(rig, "cached") == 1 and _blobs(rig, "fetched") == 2


async def test_a_failed_prefetch_is_counted_and_the_client_still_gets_the_blob(
    rig: MirrorRig,
) -> None:
    raw, _ = await push_image(rig.upstream, "library/app", "v1", layers=1)
    failing = True

    def fault(request: httpx.Request) -> httpx.Response | None:
        if failing and "/blobs/" in request.url.path and request.method == "GET":
            return httpx.Response(500)
        return None

    rig.transport.fault = fault
    assert (await rig.mirror.get("/v2/app/manifests/v1")).status_code == 200
    await _idle(rig)
    assert _blobs(rig, "failed") == 2
    assert _bytes(rig, "yes") == 0 and _bytes(rig, "no") == 0
    failing = False
    for digest in _blob_digests(raw):
        r = await rig.mirror.get(f"/v2/app/blobs/{digest}")
        assert r.status_code == 200 and Digest.of(r.content) == Digest.parse(digest)


async def test_concurrency_is_bounded(tmp_path: Path) -> None:
    rig = make_rig()
    running = peak = 0

    class Counting(httpx.AsyncByteStream):
        def __init__(self, inner: httpx.AsyncByteStream) -> None:
            self.inner = inner

        async def __aiter__(self) -> AsyncIterator[bytes]:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            try:
                async for data in self.inner:
                    await asyncio.sleep(0.01)
                    yield data
            finally:
                running -= 1

        async def aclose(self) -> None:
            await self.inner.aclose()

    inner = rig.transport.inner

    class Wrapped(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            response = await inner.handle_async_request(request)
            if "/blobs/" in request.url.path and request.method == "GET":
                stream: httpx.AsyncByteStream = response.stream  # type: ignore[assignment]
                return httpx.Response(
                    response.status_code, headers=response.headers, stream=Counting(stream)
                )
            return response

    rig.transport.inner = Wrapped()
    try:
        source = rig.source
        assert source.prefetch == 3  # the default
        await push_image(rig.upstream, "library/app", "v1", layers=8, layer_size=50_000)
        assert (await rig.mirror.get("/v2/app/manifests/v1")).status_code == 200
        await _idle(rig)
        assert peak == 3
        assert _blobs(rig, "fetched") == 9
    finally:
        await rig.aclose()


def test_unasked_bytes_count_after_the_window() -> None:
    metrics = MetricsRegistry()
    now = [1000.0]
    counters = PrefetchMetrics(metrics)
    tracker = AskTracker(counters, clock=lambda: now[0])
    a, b, c = (Digest.of(bytes([n])) for n in range(3))
    for digest in (a, b, c):
        tracker.started(digest)
    tracker.asked(a)  # while downloading
    tracker.finished(a, 10, downloaded=True)
    tracker.finished(b, 20, downloaded=True)
    tracker.finished(c, 40, downloaded=False)  # failed: nothing to count
    assert counters.bytes.get("yes") == 10 and counters.bytes.get("no") == 0
    now[0] += UNASKED_AFTER / 2
    tracker.asked(b)  # after the download, within the window
    assert counters.bytes.get("yes") == 30
    tracker.started(c)
    tracker.finished(c, 40, downloaded=True)
    now[0] += UNASKED_AFTER + 1
    tracker.started(a)
    tracker.finished(a, 10, downloaded=True)  # expiry runs as downloads end
    assert counters.bytes.get("no") == 40
    tracker.asked(c)  # too late: already counted as not asked for
    assert counters.bytes.get("yes") == 30
