"""A repository reads only the blobs linked to it - cache repositories too (issue 8, Low).

Content is stored once, so a blob pushed to a private local repository is on the same
disk as cached layers; a cache repository must not link it just because it is there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from mirror.errors import BlobUnknown
from mirror.store.drivers import create_driver
from mirror.store.store import Store
from tests.support.oci import push_blob, random_bytes
from tests.support.upstreams import MirrorRig, make_rig

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["inmemory", "filesystem"])
def store(request: pytest.FixtureRequest, tmp_path: object) -> Store:
    params = {"rootdirectory": str(tmp_path)} if request.param == "filesystem" else {}
    return Store(create_driver(str(request.param), params))


async def test_a_pushed_blob_is_not_linked_to_a_cache_repository(store: Store) -> None:
    info = await store.blobs.put(b"private layer")
    await store.repository("local/private").blobs.link(info.digest)
    cache = store.repository("docker.io/library/alpine").blobs
    with pytest.raises(BlobUnknown):
        await cache.link_cached(info.digest, "docker.io")
    assert not await cache.is_linked(info.digest)


async def test_a_blob_cached_from_an_upstream_is_shared_by_its_repositories(
    store: Store,
) -> None:
    info = await store.blobs.put(b"debian base layer")
    await store.repository("docker.io/library/python").blobs.link(info.digest, origin="docker.io")
    node = store.repository("docker.io/library/node").blobs
    assert await node.link_cached(info.digest, "docker.io") == info
    assert await node.is_linked(info.digest)
    assert await node.link_cached(info.digest, "docker.io") == info
    # Not for another upstream's caches, nor for local repositories.
    with pytest.raises(BlobUnknown):
        await store.repository("ghcr.io/org/img").blobs.link_cached(info.digest, "ghcr.io")
    with pytest.raises(BlobUnknown):
        await store.repository("local/app").blobs.stat(info.digest)


async def test_a_linked_blob_whose_data_is_gone_is_unknown(store: Store) -> None:
    info = await store.blobs.put(b"collected")
    await store.repository("docker.io/a").blobs.link(info.digest, origin="docker.io")
    await store.blobs.delete(info.digest)
    with pytest.raises(BlobUnknown):
        await store.repository("docker.io/a").blobs.link_cached(info.digest, "docker.io")
    with pytest.raises(BlobUnknown):
        await store.repository("docker.io/b").blobs.link_cached(info.digest, "docker.io")


@pytest.fixture
async def rig() -> AsyncIterator[MirrorRig]:
    rig = make_rig()
    yield rig
    await rig.aclose()


async def test_a_pushed_blob_is_not_served_by_a_cache_repository(rig: MirrorRig) -> None:
    digest = await push_blob(rig.mirror, "local/private", random_bytes(5000, 3))
    r = await rig.mirror.get(f"/v2/library/anything/blobs/{digest}")
    assert r.status_code == 404, r.status_code
