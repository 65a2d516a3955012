"""Nothing stored is read whole into memory before its size is known to fit (issue 8, High 1).

Memory is measured with tracemalloc around the one request: reading a 32 MiB blob whole
would show up as a peak of at least that much.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from mirror.errors import ManifestUnknown
from mirror.store import links, paths
from mirror.store.drivers import create_driver
from mirror.store.manifests import ManifestCache
from mirror.store.store import Store
from mirror.types import Manifest
from tests.support.oci import OCI_MANIFEST, manifest_bytes, push_blob, push_image, random_bytes
from tests.support.upstreams import MirrorRig, make_rig

pytestmark = pytest.mark.anyio

MiB = 1024 * 1024
LARGE = random_bytes(32 * MiB, 7)
BOUND = 8 * MiB


async def peak_of(call: Callable[[], Awaitable[object]]) -> tuple[int, object]:
    """The peak of traced allocations while `call` runs, and what it returned or raised."""
    tracemalloc.start()
    try:
        try:
            result: object = await call()
        except Exception as exc:
            result = exc
        return tracemalloc.get_traced_memory()[1], result
    finally:
        tracemalloc.stop()


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[MirrorRig]:
    rig = make_rig(driver="filesystem", root=str(tmp_path / "root"))
    yield rig
    await rig.aclose()


async def test_manifest_get_by_the_digest_of_a_cached_layer(rig: MirrorRig) -> None:
    digest = await push_blob(rig.mirror, "local/big", LARGE)
    peak, response = await peak_of(lambda: rig.mirror.get(f"/v2/any/name/manifests/{digest}"))
    assert peak < BOUND, f"{peak} bytes allocated"
    assert isinstance(response, httpx.Response), response
    assert response.status_code == 404, response.text
    assert response.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"


async def test_an_upstream_head_naming_a_cached_layer(rig: MirrorRig) -> None:
    """A tag's revalidation HEAD that answers with a layer's digest (a broken or hostile
    upstream) must not read that layer whole either."""
    layer = await push_blob(rig.mirror, "local/big", LARGE)
    await push_image(rig.upstream, "library/app", "v1")
    assert (await rig.mirror.get("/v2/app/manifests/v1")).status_code == 200

    def lie(request: httpx.Request) -> httpx.Response | None:
        if request.method == "HEAD" and request.url.path.endswith("/manifests/v1"):
            headers = {"Content-Type": OCI_MANIFEST, "Docker-Content-Digest": layer}
            return httpx.Response(200, headers=headers)
        return None

    rig.transport.fault = lie
    rig.source.freshness = 0.0
    peak, response = await peak_of(lambda: rig.mirror.get("/v2/app/manifests/v1"))
    assert peak < BOUND, f"{peak} bytes allocated"
    assert isinstance(response, httpx.Response), response
    # The cached tag (stale), or the upstream's miss of the digest it named; never a 5xx.
    assert response.status_code in (200, 404), response.text
    if response.status_code == 404:
        assert response.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"


async def test_manifest_load_of_a_large_blob_reads_nothing(tmp_path: Path) -> None:
    store = Store(create_driver("filesystem", {"rootdirectory": str(tmp_path)}))
    info = await store.blobs.put(LARGE)
    repository = store.repository("r")
    peak, result = await peak_of(lambda: repository.manifests.load(info.digest))
    assert peak < BOUND, f"{peak} bytes allocated"
    assert isinstance(result, ManifestUnknown), result
    # A revision link to it (a damaged store) does not make it readable either.
    await links.write_link(store.driver, paths.revision_link("r", info.digest), info.digest)
    peak, result = await peak_of(lambda: repository.manifests.get(info.digest))
    assert peak < BOUND and isinstance(result, ManifestUnknown), result


async def test_a_stored_blob_that_is_not_a_manifest_is_unknown_as_one(tmp_path: Path) -> None:
    store = Store(create_driver("inmemory", {}))
    info = await store.blobs.put(b'{"architecture": "amd64", "os": "linux"}')
    with pytest.raises(ManifestUnknown):
        await store.repository("r").manifests.load(info.digest)


def manifest_of(size: int, seed: int) -> Manifest:
    raw = manifest_bytes(b"{}", [], annotations={"pad": "x" * size, "seed": str(seed)})
    return Manifest.parse(raw)


def test_the_manifest_cache_is_bounded_in_bytes() -> None:
    cache = ManifestCache(limit=4096, max_bytes=10 * MiB)
    manifests = [manifest_of(3 * MiB, i) for i in range(8)]
    for manifest in manifests:
        cache.put(manifest)
    assert cache.size <= 10 * MiB
    assert cache.get(manifests[-1].digest) is manifests[-1]
    assert cache.get(manifests[0].digest) is None
    one_big = manifest_of(4 * MiB - 1024, 99)
    small = ManifestCache(max_bytes=MiB)
    small.put(one_big)  # larger than the whole budget: not kept
    assert small.get(one_big.digest) is None and small.size == 0
