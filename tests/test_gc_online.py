"""The parts of garbage collection that make it safe next to a serving registry: the
grace delay, the access log, deletion marks, the lease, and stopping cleanly on errors.

Time is moved with the collector's and the access log's clocks (content written now is
"old" to a collection that believes it starts an hour later), never with sleeps.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from mirror.coordination.accesslog import MetadataAccessLog
from mirror.coordination.leases import LocalCoordinator
from mirror.coordination.metadata import MemoryMetadataStore
from mirror.digests import Digest
from mirror.lifecycle.collector import (
    LEASE_KEY,
    GarbageCollector,
    GCBusy,
    GCError,
    GCOptions,
    collect_exclusively,
)
from mirror.lifecycle.sweep import BATCH_CALL, DELETES_IN_FLIGHT
from mirror.store import paths
from mirror.store.driver import StorageDriver, StorageDriverError
from mirror.store.drivers import create_driver
from mirror.store.store import Store
from tests.support.gcstores import (
    ObservedDriver,
    add_blob,
    add_image,
    blob_exists,
    files_of,
    link_exists,
)

pytestmark = pytest.mark.anyio

HOUR = 3600.0


def later(seconds: float) -> Callable[[], float]:
    return lambda: time.time() + seconds


@pytest.fixture
def driver(driver_name: str, tmp_path: Path) -> StorageDriver:
    params = {"rootdirectory": str(tmp_path / "root")} if driver_name == "filesystem" else {}
    return create_driver(driver_name, params)


@pytest.fixture
def store(driver: StorageDriver) -> Store:
    return Store(driver, delete_enabled=True)


@pytest.fixture
async def access_log() -> MetadataAccessLog:
    # The store's touches happen "two hours from now", i.e. after the collection starts.
    return MetadataAccessLog(MemoryMetadataStore(), clock=later(2 * HOUR))


async def test_content_newer_than_the_grace_delay_is_kept(
    store: Store, driver: StorageDriver
) -> None:
    """#3045: a push's layers, uploaded before its manifest, must survive a collection."""
    uploaded = await add_blob(store, "app", b"a layer whose manifest is still to come")
    report = await GarbageCollector(driver, GCOptions(delay=HOUR)).run()
    assert await blob_exists(driver, uploaded)
    assert await link_exists(driver, paths.layer_link("app", uploaded))
    assert (report.kept_recent, report.blobs_removed) == (1, 0)
    report = await GarbageCollector(driver, GCOptions(delay=HOUR), clock=later(2 * HOUR)).run()
    assert not await blob_exists(driver, uploaded)
    assert report.blobs_removed == 1


async def test_an_untagged_manifest_pushed_within_the_delay_keeps_everything_it_needs(
    store: Store, driver: StorageDriver
) -> None:
    pushed = await add_image(store, "app", None, seed=1)
    options = GCOptions(delay=HOUR, delete_untagged=True)
    report = await GarbageCollector(driver, options).run()
    assert report.manifests_removed == 0
    for blob in pushed.all_blobs:
        assert await blob_exists(driver, blob)
    report = await GarbageCollector(driver, options, clock=later(2 * HOUR)).run()
    assert report.manifests_removed == 1


async def test_content_the_store_touched_is_kept_however_old_its_files(
    store: Store, driver: StorageDriver, access_log: MetadataAccessLog
) -> None:
    checked = await add_blob(store, "app", b"a blob a client just checked for (HEAD)")
    untouched = await add_blob(store, "app", b"nobody asked for this one")
    pulled = await add_image(store, "app", None, seed=1)
    await access_log.touch([checked, pulled.digest])
    collector = GarbageCollector(
        driver,
        GCOptions(delay=60.0, delete_untagged=True),
        access_log=access_log,
        marks=access_log,
        clock=later(HOUR),
    )
    report = await collector.run()
    assert await blob_exists(driver, checked)
    assert not await blob_exists(driver, untouched)
    # An untagged manifest pulled by digest lately stays, and so do its blobs.
    assert await link_exists(driver, paths.revision_link("app", pulled.digest))
    for blob in pulled.all_blobs:
        assert await blob_exists(driver, blob)
    assert report.kept_recent == 2
    assert await access_log.marked([checked, untouched]) == [False, False]


async def test_a_touch_between_the_deletion_mark_and_the_delete_keeps_the_blob(
    store: Store, driver: StorageDriver, access_log: MetadataAccessLog
) -> None:
    """The store's side of the protocol (touch durably, then check the mark) racing the
    collector's (mark, then re-read the access log): the re-read sees the touch."""
    raced = await add_blob(store, "app", b"mounted into another repository right now")
    other = await add_blob(store, "app", b"not used by anyone")
    marked_at_delete: list[bool] = []

    class RacingMarks:
        async def mark(self, digest: Digest, ttl: float) -> None:
            await access_log.mark(digest, ttl)
            if digest == raced:
                await access_log.touch([digest], durable=True)

        async def unmark(self, digest: Digest) -> None:
            await access_log.unmark(digest)

        async def marked(self, digests: Sequence[Digest]) -> list[bool]:
            return await access_log.marked(digests)

    async def hook(operation: str, path: str) -> None:
        if operation == "delete" and path == paths.blob_dir(other):
            marked_at_delete.extend(await access_log.marked([other]))

    collector = GarbageCollector(
        ObservedDriver(driver, hook),
        GCOptions(delay=60.0),
        access_log=access_log,
        marks=RacingMarks(),
        clock=later(HOUR),
    )
    report = await collector.run()
    assert await blob_exists(driver, raced)
    assert not await blob_exists(driver, other)
    assert marked_at_delete == [True]  # the store would have seen the mark
    assert await access_log.marked([raced, other]) == [False, False]
    assert report.kept_recent == 1


async def test_a_failure_while_marking_deletes_nothing(store: Store, driver: StorageDriver) -> None:
    image = await add_image(store, "app", "v1", seed=1)
    await add_blob(store, "app", b"orphan")
    before = await files_of(driver)

    async def hook(operation: str, path: str) -> None:
        if operation == "get" and path == paths.blob_data(image.digest):
            raise StorageDriverError("the object store answered 500", path=path)

    warnings: list[str] = []
    collector = GarbageCollector(ObservedDriver(driver, hook), warn=warnings.append)
    with pytest.raises(GCError, match="marking failed, nothing was deleted"):
        await collector.run()
    assert await files_of(driver) == before
    assert collector.report.errors == 1
    assert any("500" in line for line in warnings)


async def test_a_failed_delete_is_counted_and_the_rest_goes_on(
    store: Store, driver: StorageDriver
) -> None:
    stuck = await add_blob(store, "app", b"on a read-only disk")
    removable = [await add_blob(store, "app", bytes([n]) * 64) for n in range(4)]

    async def hook(operation: str, path: str) -> None:
        if operation == "delete" and path == paths.blob_dir(stuck):
            raise StorageDriverError("permission denied", path=path)

    collector = GarbageCollector(ObservedDriver(driver, hook), warn=lambda _: None)
    report = await collector.run()
    assert (report.errors, report.blobs_removed) == (1, 4)
    assert await blob_exists(driver, stuck)
    for blob in removable:
        assert not await blob_exists(driver, blob)


async def test_one_collection_at_a_time(store: Store, driver: StorageDriver) -> None:
    orphan = await add_blob(store, "app", b"orphan")
    coordinator = LocalCoordinator()
    held = await coordinator.acquire(LEASE_KEY, 30.0, b"the online job, pid 7")
    assert held is not None
    with pytest.raises(GCBusy, match="pid 7"):
        await collect_exclusively(coordinator, GarbageCollector(driver))
    assert await blob_exists(driver, orphan)
    await held.release()
    report = await collect_exclusively(coordinator, GarbageCollector(driver))
    assert report.blobs_removed == 1
    assert await coordinator.holder_info(LEASE_KEY) is None


async def test_a_lost_lease_stops_the_sweep_before_the_next_batch(
    store: Store, driver: StorageDriver
) -> None:
    count = (DELETES_IN_FLIGHT + 2) * BATCH_CALL
    orphans = [await add_blob(store, "app", n.to_bytes(2, "big") * 32) for n in range(count)]
    deletes: list[str] = []

    async def hook(operation: str, path: str) -> None:
        if operation == "delete":
            deletes.append(path)

    lost: Callable[[], bool] = lambda: bool(deletes)  # noqa: E731
    collector = GarbageCollector(ObservedDriver(driver, hook), warn=lambda _: None)
    with pytest.raises(GCError, match="lease was lost"):
        await collector.run(stop=lost)
    remaining = [blob for blob in orphans if await blob_exists(driver, blob)]
    # The batches already under way finish; no other one starts.
    assert len(remaining) >= count - DELETES_IN_FLIGHT * BATCH_CALL
    assert len(deletes) == 2 * (count - len(remaining))  # a layer link and the blob, each
