from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support.oci import (
    OCI_INDEX,
    OCI_MANIFEST,
    digest_of,
    index_bytes,
    manifest_bytes,
    push_blob,
    push_image,
    push_manifest,
)
from tests.support.upstreams import MirrorRig, make_rig

pytestmark = pytest.mark.anyio

# These tests count the upstream requests of manifest pulls: prefetch (its own tests in
# test_pullthrough_prefetch.py) would add blob GETs to them.


@pytest.fixture
async def rig() -> AsyncIterator[MirrorRig]:
    rig = make_rig(prefetch=False)
    yield rig
    await rig.aclose()


async def test_tag_pull_through_docker_hub_style(rig: MirrorRig) -> None:
    raw, digest = await push_image(rig.upstream, "library/alpine", "3")
    r = await rig.mirror.get("/v2/alpine/manifests/3")
    assert r.status_code == 200, r.text
    assert r.content == raw
    assert r.headers["docker-content-digest"] == digest
    assert rig.transport.count("GET", "/v2/library/alpine/manifests/3") == 1
    # Stored once under the upstream's prefix; every way in reads the same copy.
    for url in [
        "/v2/library/alpine/manifests/3?ns=docker.io",
        "/v2/docker.io/library/alpine/manifests/3",
        "/v2/index.docker.io/library/alpine/manifests/3",
        f"/v2/alpine/manifests/{digest}",
    ]:
        r = await rig.mirror.get(url)
        assert r.status_code == 200 and r.content == raw, url
    assert len(rig.transport.log) == 1
    catalog = (await rig.mirror.get("/v2/_catalog")).json()
    assert catalog["repositories"] == ["docker.io/library/alpine"]


async def test_fresh_tag_makes_no_upstream_request(rig: MirrorRig) -> None:
    await push_image(rig.upstream, "library/app", "v1")
    await rig.mirror.get("/v2/app/manifests/v1")
    rig.transport.log.clear()
    for _ in range(5):
        assert (await rig.mirror.get("/v2/app/manifests/v1")).status_code == 200
        assert (await rig.mirror.head("/v2/app/manifests/v1")).status_code == 200
    assert rig.transport.log == []


async def test_stale_tag_one_head_and_get_only_on_change() -> None:
    rig = make_rig(freshness=0.0, prefetch=False)
    try:
        await push_image(rig.upstream, "library/app", "v1", seed=1)
        await rig.mirror.get("/v2/app/manifests/v1")
        rig.transport.log.clear()
        r = await rig.mirror.get("/v2/app/manifests/v1")
        assert r.status_code == 200
        assert rig.transport.log == [("HEAD", "/v2/library/app/manifests/v1")]
        rig.transport.log.clear()
        raw2, digest2 = await push_image(rig.upstream, "library/app", "v1", seed=2)
        rig.transport.log.clear()
        r = await rig.mirror.get("/v2/app/manifests/v1")
        assert r.content == raw2 and r.headers["docker-content-digest"] == digest2
        assert rig.transport.log == [
            ("HEAD", "/v2/library/app/manifests/v1"),
            ("GET", f"/v2/library/app/manifests/{digest2}"),
        ]
    finally:
        await rig.aclose()


async def test_concurrent_revalidations_coalesce() -> None:
    import asyncio

    rig = make_rig(freshness=0.0, prefetch=False)
    try:
        await push_image(rig.upstream, "library/app", "v1")
        await rig.mirror.get("/v2/app/manifests/v1")
        rig.transport.log.clear()
        rig.transport.slow = None
        results = await asyncio.gather(*[rig.mirror.get("/v2/app/manifests/v1") for _ in range(10)])
        assert all(r.status_code == 200 for r in results)
        assert rig.transport.count("HEAD") == 1
        assert rig.transport.count("GET") == 0
    finally:
        await rig.aclose()


async def test_head_on_uncached_tag_is_answered_from_upstream_head(rig: MirrorRig) -> None:
    raw, digest = await push_image(rig.upstream, "library/app", "v1")
    r = await rig.mirror.head("/v2/app/manifests/v1")
    assert r.status_code == 200
    assert r.headers["docker-content-digest"] == digest
    assert r.headers["content-length"] == str(len(raw))
    assert r.headers["content-type"] == OCI_MANIFEST
    assert rig.transport.log == [("HEAD", "/v2/library/app/manifests/v1")]
    # containerd's next step, GET by digest, fetches it once.
    r = await rig.mirror.get(f"/v2/app/manifests/{digest}")
    assert r.content == raw
    assert rig.transport.count("GET") == 1


async def test_digest_references_are_never_revalidated() -> None:
    rig = make_rig(freshness=0.0, prefetch=False)
    try:
        _, digest = await push_image(rig.upstream, "library/app", "v1")
        await rig.mirror.get(f"/v2/app/manifests/{digest}")
        rig.transport.log.clear()
        for _ in range(3):
            assert (await rig.mirror.get(f"/v2/app/manifests/{digest}")).status_code == 200
            assert (await rig.mirror.head(f"/v2/app/manifests/{digest}")).status_code == 200
        assert rig.transport.log == []
    finally:
        await rig.aclose()


async def test_multi_arch_index_cached_whole_children_on_demand(rig: MirrorRig) -> None:
    config, layer = b'{"architecture":"amd64"}', b"layer"
    await push_blob(rig.upstream, "library/multi", config)
    await push_blob(rig.upstream, "library/multi", layer)
    children = []
    for arch in ("amd64", "arm64"):
        child = manifest_bytes(config, [layer], annotations={"arch": arch})
        await push_manifest(rig.upstream, "library/multi", digest_of(child), child)
        children.append((child, OCI_MANIFEST))
    index = index_bytes(children)
    await push_manifest(rig.upstream, "library/multi", "latest", index, OCI_INDEX)
    r = await rig.mirror.get("/v2/multi/manifests/latest", headers={"Accept": OCI_MANIFEST})
    assert r.content == index  # whole index, byte for byte, whatever the client accepts
    assert r.headers["content-type"] == OCI_INDEX
    assert len(json.loads(r.content)["manifests"]) == 2
    assert rig.transport.count("GET", "/manifests/") == 1
    arm = children[1][0]
    r = await rig.mirror.get(f"/v2/multi/manifests/{digest_of(arm)}")
    assert r.content == arm
    assert rig.transport.count("GET", "/manifests/") == 2


async def test_upstream_404_is_remembered_briefly(rig: MirrorRig) -> None:
    r = await rig.mirror.get("/v2/missing/manifests/v1")
    assert r.status_code == 404
    assert r.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    r = await rig.mirror.get("/v2/missing/manifests/v1")
    assert r.status_code == 404
    assert rig.transport.count("GET") == 1


async def test_upstream_404_never_deletes_cached_content() -> None:
    rig = make_rig(freshness=0.0, prefetch=False)
    try:
        raw, digest = await push_image(rig.upstream, "library/gone", "v1")
        await rig.mirror.get("/v2/gone/manifests/v1")
        await rig.upstream.delete(f"/v2/library/gone/manifests/{digest}")
        r = await rig.mirror.get("/v2/gone/manifests/v1")
        # The tag is gone upstream: the cached one is served, with a warning...
        assert r.status_code == 200 and r.content == raw
        assert r.headers["warning"].startswith('299 - "upstream docker.io no longer has')
        r = await rig.mirror.get(f"/v2/gone/manifests/{digest}")
        assert r.status_code == 200 and r.content == raw  # ...the content stays
        assert await rig.store.repository("docker.io/library/gone").tags.get("v1") is not None
    finally:
        await rig.aclose()


async def test_a_tag_gone_upstream_is_served_from_cache_with_a_warning() -> None:
    """Issue 8, item 8: one upstream 404 must not hide a cached tag."""
    rig = make_rig(freshness=0.0, prefetch=False)
    try:
        raw, digest = await push_image(rig.upstream, "library/app", "v1")
        await rig.mirror.get("/v2/app/manifests/v1")
        rig.transport.fault = lambda request: (
            httpx.Response(404, json={"errors": [{"code": "MANIFEST_UNKNOWN"}]})
            if request.url.path.endswith("/manifests/v1")
            else None
        )
        for _ in range(2):
            r = await rig.mirror.get("/v2/app/manifests/v1")
            assert r.status_code == 200 and r.content == raw and "warning" in r.headers
            h = await rig.mirror.head("/v2/app/manifests/v1")
            assert h.status_code == 200 and h.headers["docker-content-digest"] == digest
            assert "warning" in h.headers
        # The miss is remembered under the tag: asked once, not on every pull.
        assert rig.transport.count("HEAD", "/manifests/v1") == 1
        r = await rig.mirror.get("/v2/app/manifests/never-cached")
        assert r.status_code == 404
        rig.source.serve_missing_tags = False  # the upstream's word goes
        r = await rig.mirror.get("/v2/app/manifests/v1")
        assert r.status_code == 404 and r.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    finally:
        await rig.aclose()


async def test_a_404_for_the_new_digest_of_a_tag_is_not_recorded_under_the_tag() -> None:
    """The upstream moved the tag but cannot serve the new digest yet (replication lag):
    the cached tag is served, and the negative entry names the digest (issue 8, item 8)."""
    rig = make_rig(freshness=0.0, prefetch=False)
    try:
        raw1, _ = await push_image(rig.upstream, "library/app", "v1", seed=1)
        await rig.mirror.get("/v2/app/manifests/v1")
        raw2, digest2 = await push_image(rig.upstream, "library/app", "v1", seed=2)
        rig.transport.fault = lambda request: (
            httpx.Response(404, json={"errors": [{"code": "MANIFEST_UNKNOWN"}]})
            if request.url.path.endswith(f"/manifests/{digest2}")
            else None
        )
        r = await rig.mirror.get("/v2/app/manifests/v1")
        assert r.status_code == 200 and r.content == raw1 and "warning" in r.headers
        assert await rig.metadata.get("neg:docker.io/library/app:v1") is None
        assert await rig.metadata.get(f"neg:docker.io/library/app:{digest2}") is not None
        await rig.metadata.delete(f"neg:docker.io/library/app:{digest2}")
        rig.transport.fault = None
        r = await rig.mirror.get("/v2/app/manifests/v1")
        assert r.status_code == 200 and r.content == raw2 and "warning" not in r.headers
    finally:
        await rig.aclose()


async def test_upstream_manifest_with_wrong_digest_is_refused(rig: MirrorRig) -> None:
    raw, digest = await push_image(rig.upstream, "library/app", "v1")

    def lie(request: httpx.Request) -> httpx.Response | None:
        if request.method == "GET" and "/manifests/" in request.url.path:
            return httpx.Response(
                200,
                content=raw.replace(b'"schemaVersion": 2', b'"schemaVersion":2'),
                headers={"Content-Type": OCI_MANIFEST, "Docker-Content-Digest": digest},
            )
        return None

    rig.transport.fault = lie
    r = await rig.mirror.get(f"/v2/app/manifests/{digest}")
    assert r.status_code == 503
    r = await rig.mirror.get("/v2/app/manifests/v1")
    assert r.status_code == 503
    assert not await rig.store.repository("docker.io/library/app").manifests.exists(
        __import__("mirror.digests", fromlist=["Digest"]).Digest.parse(digest)
    )


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"schemaVersion": 1, "name": "library/app"}',
        b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json"}',
    ],
    ids=["garbage", "schema1", "no-layers"],
)
async def test_an_invalid_upstream_manifest_is_the_upstreams_fault(
    rig: MirrorRig, body: bytes
) -> None:
    """Not a 400 blaming the client (issue 8, low): the upstream is of no use, so the
    cached tag is served, and with nothing cached the answer is UNAVAILABLE."""
    raw, _ = await push_image(rig.upstream, "library/app", "v1")
    await rig.mirror.get("/v2/app/manifests/v1")
    digest = digest_of(body)

    def invalid(request: httpx.Request) -> httpx.Response | None:
        if "/manifests/" not in request.url.path:
            return None
        headers = {"Content-Type": OCI_MANIFEST, "Docker-Content-Digest": digest}
        return httpx.Response(
            200,
            content=b"" if request.method == "HEAD" else body,
            headers={**headers, "Content-Length": str(len(body))},
        )

    rig.transport.fault = invalid
    r = await rig.mirror.get("/v2/other/manifests/v1")
    assert r.status_code == 503 and r.json()["errors"][0]["code"] == "UNAVAILABLE"
    r = await rig.mirror.get(f"/v2/other/manifests/{digest}")
    assert r.status_code == 503 and r.json()["errors"][0]["code"] == "UNAVAILABLE"
    rig.source.freshness = 0.0
    r = await rig.mirror.get("/v2/app/manifests/v1")
    assert r.status_code == 200 and r.content == raw and "warning" in r.headers


async def test_tag_list_comes_from_upstream(rig: MirrorRig) -> None:
    for tag in ("b", "a", "c"):
        await push_image(rig.upstream, "library/app", tag)
    r = await rig.mirror.get("/v2/app/tags/list")
    assert r.json() == {"name": "app", "tags": ["a", "b", "c"]}
    r = await rig.mirror.get("/v2/app/tags/list?n=2")
    assert r.json()["tags"] == ["a", "b"] and 'rel="next"' in r.headers["link"]
    r = await rig.mirror.get("/v2/nothing/tags/list")
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == "NAME_UNKNOWN"


async def test_tag_list_falls_back_to_cached_tags(rig: MirrorRig) -> None:
    await push_image(rig.upstream, "library/app", "v1")
    await push_image(rig.upstream, "library/app", "v2", seed=2)
    await rig.mirror.get("/v2/app/manifests/v1")
    rig.transport.down = True
    r = await rig.mirror.get("/v2/app/tags/list")
    assert r.json()["tags"] == ["v1"] and "warning" in r.headers
    r = await rig.mirror.get("/v2/never-pulled/tags/list")
    assert r.status_code == 503


async def test_referrers_come_from_upstream(rig: MirrorRig) -> None:
    raw, digest = await push_image(rig.upstream, "library/app", "v1")
    subject = {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(raw)}
    _, sig = await push_image(
        rig.upstream, "library/app", "sig", seed=5, subject=subject, artifact_type="x/sig"
    )
    r = await rig.mirror.get(f"/v2/app/referrers/{digest}")
    assert r.status_code == 200
    assert [m["digest"] for m in r.json()["manifests"]] == [sig]
    assert r.json()["manifests"][0]["artifactType"] == "x/sig"
    r = await rig.mirror.get(f"/v2/app/referrers/{digest}?artifactType=other")
    assert r.json()["manifests"] == []
    assert r.headers["oci-filters-applied"] == "artifactType"
    # Pulled through, the referrer is cached: served from the cache when upstream is down.
    await rig.mirror.get(f"/v2/app/manifests/{sig}")
    rig.transport.down = True
    r = await rig.mirror.get(f"/v2/app/referrers/{digest}")
    assert [m["digest"] for m in r.json()["manifests"]] == [sig]


async def test_tag_resolved_by_head_then_pulled_by_digest_is_cached() -> None:
    """containerd's way: HEAD the tag, GET the digest; then the tag is cached and fresh."""
    rig = make_rig(prefetch=False)
    try:
        raw, digest = await push_image(rig.upstream, "library/app", "v1")
        assert (
            await rig.mirror.head("/v2/library/app/manifests/v1?ns=docker.io")
        ).status_code == 200
        await rig.mirror.get(f"/v2/library/app/manifests/{digest}?ns=docker.io")
        rig.transport.log.clear()
        r = await rig.mirror.head("/v2/library/app/manifests/v1?ns=docker.io")
        assert r.headers["docker-content-digest"] == digest
        assert rig.transport.log == []  # fresh: no upstream request
        rig.transport.down = True
        rig.source.freshness = 0.0
        r = await rig.mirror.get("/v2/library/app/manifests/v1?ns=docker.io")
        assert r.status_code == 200 and r.content == raw and "warning" in r.headers
    finally:
        await rig.aclose()
