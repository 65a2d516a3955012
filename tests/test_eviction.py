"""Cache eviction on the store (issue 12): ttl and size cap, by whole images, least
recently used first; shared blobs, local repositories, synced tags and content in use
stay.

Time moves with a shared fake clock (the access log's touches and the evictor's "now"),
never with sleeps. Cache repositories are those under the prefix `up/`.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from mirror.coordination.accesslog import MetadataAccessLog
from mirror.coordination.leases import LocalCoordinator
from mirror.coordination.metadata import MemoryMetadataStore
from mirror.coordination.redis_metadata import RedisMetadataStore
from mirror.digests import Digest
from mirror.lifecycle.eviction import EvictionPolicy, Evictor
from mirror.lifecycle.evictjob import EvictionJob
from mirror.metrics import MetricsRegistry
from mirror.store.driver import StorageDriver
from mirror.store.drivers import create_driver
from mirror.store.store import Store
from mirror.store.tracking import ContentTracker
from mirror.sync.marks import SyncMarks
from mirror.types import Reference
from tests.support.gcstores import StoredImage, add_image, add_index, blob_exists
from tests.support.oci import OCI_MANIFEST, manifest_bytes, random_bytes
from tests.support.redis import delete_prefix, redis_client, unique_prefix

pytestmark = pytest.mark.anyio

HOUR = 3600.0
LAYER = 10_000


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def origin_of(name: str) -> str | None:
    return "up" if name.startswith("up/") else None


@pytest.fixture
def driver(driver_name: str, tmp_path: Path) -> StorageDriver:
    params = {"rootdirectory": str(tmp_path / "root")} if driver_name == "filesystem" else {}
    return create_driver(driver_name, params)


class Setup:
    def __init__(self, driver: StorageDriver) -> None:
        self.clock = Clock()
        self.metadata = MemoryMetadataStore()
        self.log = MetadataAccessLog(self.metadata, clock=self.clock)
        self.tracker = ContentTracker(self.log, self.log)
        self.store = Store(driver, delete_enabled=True, tracker=self.tracker)
        self.driver = driver

    def evictor(self, policy: EvictionPolicy, *, sync: bool = False) -> Evictor:
        return Evictor(
            self.store,
            self.log,
            self.log,
            policy,
            origin_of=origin_of,
            sync_marks=SyncMarks(self.metadata) if sync else None,
            clock=self.clock,
        )

    async def image(self, repository: str, tag: str, seed: int, **kw: object) -> StoredImage:
        return await add_image(
            self.store,
            repository,
            tag,
            seed=seed,
            layers=0,
            shared=(random_bytes(LAYER, seed),),
            **kw,  # type: ignore[arg-type]
        )

    async def use(self, image: StoredImage, after: float = HOUR) -> None:
        """A pull of `image` `after` seconds later than the last one."""
        self.clock.now += after
        await self.store.repository(image.repository).get_manifest(Reference(digest=image.digest))

    async def stored(self, image: StoredImage) -> bool:
        return all([await blob_exists(self.driver, d) for d in image.all_blobs])

    async def pulls(self, image: StoredImage, tag: str) -> bool:
        repo = self.store.repository(image.repository)
        try:
            manifest = await repo.get_manifest(Reference(tag=tag))
        except Exception:
            return False
        return manifest.raw == image.raw and await self.stored(image)


@pytest.fixture
def setup(driver: StorageDriver) -> Setup:
    return Setup(driver)


async def test_the_cap_evicts_the_least_recently_used_images_whole(setup: Setup) -> None:
    old = await setup.image("up/lib/a", "1", seed=1)
    middle = await setup.image("up/lib/b", "1", seed=2)
    new = await setup.image("up/lib/a", "2", seed=3)
    await setup.use(old)  # old was pulled again: now middle is the oldest
    await setup.use(new)
    setup.clock.now += HOUR
    report = await setup.evictor(EvictionPolicy(maxsize=int(LAYER * 2.5))).run_once()
    assert report.removed == ["up/lib/b:1"]
    assert report.evicted["size"] == 1
    assert not await setup.stored(middle)
    assert report.bytes_evicted >= LAYER
    assert report.usage <= LAYER * 2.5 < report.usage_before
    assert await setup.pulls(old, "1") and await setup.pulls(new, "2")
    assert (await setup.store.repository("up/lib/b").tags.get("1")) is None


async def test_a_shared_blob_stays_and_local_repositories_are_never_evicted(
    setup: Setup,
) -> None:
    shared = random_bytes(LAYER, 99)
    local = await add_image(setup.store, "team/app", "v1", seed=5, layers=0, shared=(shared,))
    cached = await add_image(setup.store, "up/lib/a", "1", seed=6, layers=1, shared=(shared,))
    other = await add_image(setup.store, "up/lib/c", "1", seed=7, layers=1, shared=(shared,))
    await setup.use(other)
    setup.clock.now += HOUR
    report = await setup.evictor(EvictionPolicy(maxsize=1)).run_once()
    assert sorted(report.removed) == ["up/lib/a:1", "up/lib/c:1"]
    assert await setup.pulls(local, "v1")
    digest_of_shared = local.blobs[-1]
    assert await blob_exists(setup.driver, digest_of_shared)
    assert not await blob_exists(setup.driver, cached.blobs[1])  # its own layer went
    # The local image's bytes never counted as cached.
    assert report.usage == 0


async def test_a_blob_shared_by_a_kept_image_stays(setup: Setup) -> None:
    shared = random_bytes(LAYER, 42)
    old = await add_image(setup.store, "up/lib/a", "1", seed=8, layers=1, shared=(shared,))
    new = await add_image(setup.store, "up/lib/b", "1", seed=9, layers=1, shared=(shared,))
    await setup.use(new)
    setup.clock.now += HOUR
    # The shared layer and one image's own small layer, config and manifest fit.
    report = await setup.evictor(EvictionPolicy(maxsize=LAYER + 1500)).run_once()
    assert report.removed == ["up/lib/a:1"]
    assert await setup.pulls(new, "1")
    assert not await blob_exists(setup.driver, old.blobs[1])


async def test_ttl_removes_what_was_not_used_for_it_and_every_use_renews(setup: Setup) -> None:
    unused = await setup.image("up/lib/a", "1", seed=10)
    renewed = await setup.image("up/lib/b", "1", seed=11)
    local = await setup.image("team/app", "1", seed=12)
    await setup.use(renewed, after=20 * HOUR)
    setup.clock.now += 5 * HOUR  # unused: 25h old, renewed: 5h since its last pull
    report = await setup.evictor(EvictionPolicy(ttls={"up": 24 * HOUR})).run_once()
    assert report.removed == ["up/lib/a:1"] and report.evicted["ttl"] == 1
    assert not await setup.stored(unused)
    assert await setup.pulls(renewed, "1") and await setup.pulls(local, "1")


async def test_an_index_goes_with_its_children_and_their_blobs(setup: Setup) -> None:
    children = [
        await add_image(setup.store, "up/lib/multi", None, seed=20 + i, layers=1) for i in range(2)
    ]
    index = await add_index(setup.store, "up/lib/multi", "latest", children)
    kept = await setup.image("up/lib/b", "1", seed=30)
    await setup.use(kept)
    setup.clock.now += HOUR
    report = await setup.evictor(EvictionPolicy(maxsize=LAYER + 1000)).run_once()
    assert report.removed == ["up/lib/multi:latest"]
    assert not any([await blob_exists(setup.driver, d) for d in index.all_blobs])
    assert await setup.pulls(kept, "1")


async def test_synced_tags_and_content_being_read_are_not_evicted(setup: Setup) -> None:
    synced = await setup.image("up/lib/a", "1", seed=40)
    reading = await setup.image("up/lib/b", "1", seed=41)
    plain = await setup.image("up/lib/c", "1", seed=42)
    await SyncMarks(setup.metadata).mark("up/lib/a", "1", synced.digest, setup.clock(), HOUR * 9)
    setup.clock.now += 2 * HOUR
    with setup.tracker.reading(reading.blobs[-1]):
        report = await setup.evictor(EvictionPolicy(maxsize=1), sync=True).run_once()
    assert report.removed == ["up/lib/c:1"]
    assert not await setup.stored(plain)
    assert await setup.pulls(synced, "1") and await setup.pulls(reading, "1")
    assert report.kept_in_use >= 1


async def test_content_used_moments_ago_is_not_evicted(setup: Setup) -> None:
    image = await setup.image("up/lib/a", "1", seed=50)
    await setup.use(image, after=2 * HOUR)
    setup.clock.now += 5  # within `protect`
    report = await setup.evictor(EvictionPolicy(maxsize=1, protect=30.0)).run_once()
    assert report.removed == [] and await setup.pulls(image, "1")
    setup.clock.now += 60
    report = await setup.evictor(EvictionPolicy(maxsize=1, protect=30.0)).run_once()
    assert report.removed == ["up/lib/a:1"]


@pytest.mark.redis
async def test_replicas_sharing_redis_agree_on_what_was_used(tmp_path: Path) -> None:
    """A pull on one replica renews the image for the evictor of another."""
    client = await redis_client()
    prefix = unique_prefix()
    try:
        root = {"rootdirectory": str(tmp_path / "root")}
        clock = Clock()
        logs = [
            MetadataAccessLog(RedisMetadataStore(client, prefix=prefix), clock=clock)
            for _ in range(2)
        ]
        here, there = (
            Store(create_driver("filesystem", root), tracker=ContentTracker(log, log))
            for log in logs
        )
        used = await add_image(here, "up/lib/a", "1", seed=70, layers=1)
        unused = await add_image(here, "up/lib/b", "1", seed=71, layers=1)
        clock.now += 2 * HOUR
        await here.repository("up/lib/a").get_manifest(Reference(tag="1"))
        await logs[0].flush()  # what the background writer does every second
        clock.now += HOUR
        evictor = Evictor(
            there,
            logs[1],
            logs[1],
            EvictionPolicy(ttls={"up": 2 * HOUR}),
            origin_of=origin_of,
            clock=clock,
        )
        report = await evictor.run_once()
        assert report.removed == ["up/lib/b:1"]
        driver = there.driver
        assert all([await blob_exists(driver, d) for d in used.all_blobs])
        assert not any([await blob_exists(driver, d) for d in unused.all_blobs])
    finally:
        await delete_prefix(client, prefix)
        await client.aclose()


async def test_a_blob_being_filled_is_not_touched(setup: Setup) -> None:
    """An image whose manifest is cached while a layer still downloads: evicting the
    image leaves the download's partial alone, and the fill commits."""
    layer = random_bytes(LAYER, 80)
    config = b'{"architecture": "amd64", "os": "linux"}'
    config_digest = (await setup.store.blobs.put(config)).digest
    repo = setup.store.repository("up/lib/a")
    await repo.blobs.link(config_digest)
    raw = manifest_bytes(config, [layer])
    await repo.put_manifest(Reference(tag="1"), raw, OCI_MANIFEST, verify=False)
    digest = Digest.of(layer)
    ingest = await setup.store.blobs.ingest(digest)
    await ingest.write(layer[:4096])
    await ingest.flush()
    setup.clock.now += 2 * HOUR
    report = await setup.evictor(EvictionPolicy(maxsize=1)).run_once()
    assert report.removed == ["up/lib/a:1"]
    await ingest.write(layer[4096:])
    await ingest.commit(len(layer))
    assert await blob_exists(setup.driver, digest)


async def test_the_job_runs_a_pass_after_a_fill_and_shares_timed_passes(setup: Setup) -> None:
    old = await setup.image("up/lib/a", "1", seed=90)
    setup.clock.now += 2 * HOUR
    metrics = MetricsRegistry()
    coordinator = LocalCoordinator()
    policy = EvictionPolicy(maxsize=1)
    job = EvictionJob(
        setup.evictor(policy), coordinator, setup.metadata, metrics=metrics, min_gap=0.05
    )
    other = EvictionJob(
        setup.evictor(policy), coordinator, setup.metadata, metrics=MetricsRegistry()
    )
    await job.start()
    try:
        # The first timed pass comes at start-up; later ones wait for the interval.
        evicted = metrics.counter("mirror_evictions_total", "", ("reason",))
        for _ in range(100):
            if evicted.get("size") >= 1:
                break
            await asyncio.sleep(0.05)
        assert evicted.get("size") == 1 and not await setup.stored(old)
        assert metrics.gauge("mirror_cache_max_bytes", "", mode="livemax").get() == 1
        newer = await setup.image("up/lib/b", "1", seed=91)
        setup.clock.now += 2 * HOUR
        job.filled()  # what the store's link(origin=...) of a fill calls
        for _ in range(100):
            if evicted.get("size") >= 2:
                break
            await asyncio.sleep(0.05)
        assert evicted.get("size") == 2 and not await setup.stored(newer)
        # Another worker's timed pass finds the shared record of a recent pass.
        third = await setup.image("up/lib/c", "1", seed=92)
        setup.clock.now += 2 * HOUR
        await other.start()
        await asyncio.sleep(0.3)
        assert await setup.stored(third)
    finally:
        await other.stop()
        await job.stop()
