"""Sync through the pull-through repositories: what is selected, what it costs upstream."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest

from mirror.coordination.leases import LocalCoordinator
from mirror.digests import Digest
from mirror.store import paths
from mirror.sync.filters import TagFilter
from mirror.sync.job import SyncBusy, SyncJob
from mirror.sync.marks import SyncMarks
from mirror.sync.syncer import Syncer, SyncTarget
from tests.support.oci import (
    OCI_MANIFEST,
    digest_of,
    index_bytes,
    push_image,
    push_manifest,
)
from tests.support.upstreams import MirrorRig, make_rig

pytestmark = pytest.mark.anyio
REPO = "library/app"
LOCAL = f"docker.io/{REPO}"


@pytest.fixture
async def rig() -> AsyncIterator[MirrorRig]:
    rig = make_rig(freshness=0.0)
    yield rig
    await rig.aclose()


def syncer(rig: MirrorRig, **options: int) -> Syncer:
    return Syncer(rig.resolver, SyncMarks(rig.metadata), metrics=rig.metrics, **options)


def target(**options: object) -> SyncTarget:
    return SyncTarget("docker.io", (REPO,), **options)  # type: ignore[arg-type]


def manifest_requests(rig: MirrorRig, method: str) -> int:
    return rig.transport.count(method, f"/v2/{REPO}/manifests/")


async def test_matching_tags_are_cached_and_others_not(rig: MirrorRig) -> None:
    pushed = {
        tag: await push_image(rig.upstream, REPO, tag, seed=i)
        for i, tag in enumerate(["1.24.0", "1.25.1", "1.25.2-rc1", "latest", "1.25-alpine"])
    }

    report = await syncer(rig).sync(target(tags=TagFilter(semver=">=1.25")))

    assert report.ok and report.tags == 1 and report.updated == 1
    repository = rig.store.repository(LOCAL)
    assert await repository.tags.all() == ["1.25.1"]
    assert await repository.tags.get("1.25.1") == Digest.parse(pushed["1.25.1"][1])
    manifest = await repository.manifests.get(Digest.parse(pushed["1.25.1"][1]))
    for blob in manifest.blobs:  # ordinary cached content of the upstream
        assert await repository.blobs.is_linked(blob.digest)
        await rig.store.driver.stat(paths.blob_origin(blob.digest, "docker.io"))
    mark = await SyncMarks(rig.metadata).get(LOCAL, "1.25.1")
    assert mark is not None and mark.digest == manifest.digest
    assert await SyncMarks(rig.metadata).get(LOCAL, "latest") is None


async def test_unchanged_costs_one_head_and_moved_one_head_and_one_get(rig: MirrorRig) -> None:
    await push_image(rig.upstream, REPO, "stable", seed=1)
    await push_image(rig.upstream, REPO, "moving", seed=2)
    sync = syncer(rig)
    await sync.sync(target(tags=TagFilter(regex="stable|moving")))
    _, moved = await push_image(rig.upstream, REPO, "moving", seed=3)
    rig.transport.log.clear()

    report = await sync.sync(target(tags=TagFilter(regex="stable|moving")))

    assert report.ok and report.tags == 2 and report.updated == 1 and report.blobs == 3
    assert rig.transport.count("HEAD", f"/v2/{REPO}/manifests/stable") == 1
    assert rig.transport.count("HEAD", f"/v2/{REPO}/manifests/moving") == 1
    assert manifest_requests(rig, "HEAD") == 2
    assert manifest_requests(rig, "GET") == 1
    assert rig.transport.count("GET", f"/v2/{REPO}/manifests/{moved}") == 1
    repository = rig.store.repository(LOCAL)
    assert await repository.tags.get("moving") == Digest.parse(moved)


async def test_an_index_is_cached_for_the_wanted_platforms(rig: MirrorRig) -> None:
    children = []
    for seed in (1, 2):
        raw, _ = await push_image(rig.upstream, REPO, f"child{seed}", seed=seed)
        children.append((raw, OCI_MANIFEST))
    index = index_bytes(children)  # amd64, arm64
    response = await push_manifest(
        rig.upstream, REPO, "multi", index, "application/vnd.oci.image.index.v1+json"
    )
    assert response.status_code == 201

    await syncer(rig).sync(target(tags=TagFilter(regex="multi"), platforms=("linux/arm64",)))

    repository = rig.store.repository(LOCAL)
    assert await repository.tags.get("multi") == Digest.parse(digest_of(index))
    amd64, arm64 = (Digest.parse(digest_of(raw)) for raw, _ in children)
    assert await repository.manifests.exists(arm64)
    assert not await repository.manifests.exists(amd64)
    arm_config = json.loads(children[1][0])["config"]["digest"]
    amd_config = json.loads(children[0][0])["config"]["digest"]
    assert await repository.blobs.is_linked(Digest.parse(arm_config))
    assert not await rig.store.blobs.exists(Digest.parse(amd_config))


async def test_globs_are_expanded_with_the_catalog(rig: MirrorRig) -> None:
    for name in ("library/app", "library/apt", "team/app"):
        await push_image(rig.upstream, name, "1", seed=len(name))

    report = await syncer(rig).sync(SyncTarget("docker.io", ("library/ap?", "team/app")))

    assert report.ok and report.repositories == 3 and report.tags == 3
    assert await rig.store.repositories() == [
        "docker.io/library/app",
        "docker.io/library/apt",
        "docker.io/team/app",
    ]


async def test_a_429_stops_the_pass_with_the_retry_after(rig: MirrorRig) -> None:
    await push_image(rig.upstream, REPO, "1", seed=1)
    await push_image(rig.upstream, REPO, "2", seed=2)

    def limited(request: httpx.Request) -> httpx.Response | None:
        if "/manifests/" in request.url.path:
            return httpx.Response(429, headers={"Retry-After": "120"})
        return None

    rig.transport.fault = limited
    report = await syncer(rig).sync(target())

    assert not report.ok and report.retry_after == 120.0
    assert report.stopped is not None and "429" in report.stopped
    assert manifest_requests(rig, "HEAD") + manifest_requests(rig, "GET") == 1


async def test_the_reported_quota_is_left_to_clients(rig: MirrorRig) -> None:
    for tag in ("1", "2", "3"):
        await push_image(rig.upstream, REPO, tag, seed=int(tag))

    async def quota(request: httpx.Request) -> httpx.Response:
        response = await inner.handle_async_request(request)
        response.headers["ratelimit-limit"] = "100;w=21600"
        response.headers["ratelimit-remaining"] = "10;w=21600"
        return response

    inner = rig.transport.inner
    rig.transport.inner = httpx.MockTransport(quota)
    report = await syncer(rig, reserve=10).sync(target())

    assert report.stopped is not None and "10 pulls left" in report.stopped
    assert report.tags == 0  # the tag list told the quota; no manifest was asked for
    assert manifest_requests(rig, "HEAD") + manifest_requests(rig, "GET") == 0


async def test_a_failing_upstream_ends_the_pass(rig: MirrorRig) -> None:
    await push_image(rig.upstream, REPO, "1", seed=1)
    sync = syncer(rig)
    await sync.sync(target())
    rig.transport.down = True

    report = await sync.sync(target())

    assert report.stopped is not None and not report.ok


async def test_the_job_runs_due_targets_once_under_the_lease(rig: MirrorRig) -> None:
    await push_image(rig.upstream, REPO, "1", seed=1)
    coordinator = LocalCoordinator()
    marks = SyncMarks(rig.metadata)
    job = SyncJob(syncer(rig), [target(interval=3600.0)], coordinator, marks)

    assert len(await job.run_once()) == 1
    assert await job.run_once() == []  # not due for an hour
    assert len(await job.run_once(force=True)) == 1
    held = await coordinator.acquire("sync", 30.0)
    assert held is not None
    with pytest.raises(SyncBusy):
        await job.run_once(force=True, wait=0.1)
    await held.release()
