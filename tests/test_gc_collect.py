"""Mark and sweep on crafted stores, on both local drivers, checked through the driver.

Each test builds content with the real `Store`, collects with `GarbageCollector`, and
checks what is left file by file; `served` proves through the HTTP API that every kept
image still pulls whole.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from mirror.digests import Digest
from mirror.lifecycle.collector import GarbageCollector, GCOptions
from mirror.lifecycle.report import GCReport
from mirror.proxy.app import standalone_app
from mirror.store import paths
from mirror.store.driver import StorageDriver
from mirror.store.drivers import create_driver
from mirror.store.store import Store
from tests.support.gcstores import (
    StoredImage,
    add_blob,
    add_image,
    add_index,
    blob_exists,
    files_of,
    link_exists,
)

pytestmark = pytest.mark.anyio

ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    ]
)


@pytest.fixture
async def driver(driver_name: str, tmp_path: Path) -> AsyncIterator[StorageDriver]:
    params = {"rootdirectory": str(tmp_path / "root")} if driver_name == "filesystem" else {}
    yield create_driver(driver_name, params)


@pytest.fixture
def store(driver: StorageDriver) -> Store:
    return Store(driver, delete_enabled=True)


async def collect(
    driver: StorageDriver, *, dry_run: bool = False, delete_untagged: bool = False
) -> tuple[GCReport, list[str]]:
    lines: list[str] = []
    warnings: list[str] = []
    options = GCOptions(dry_run=dry_run, delete_untagged=delete_untagged)
    collector = GarbageCollector(driver, options, emit=lines.append, warn=warnings.append)
    report = await collector.run()
    return report, lines + warnings


async def served(driver: StorageDriver, image: StoredImage) -> None:
    """The image and everything it needs pull whole through a fresh registry app."""
    app = standalone_app(driver)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://registry.test") as client:
        await _pull(client, image)


async def _pull(client: httpx.AsyncClient, image: StoredImage) -> None:
    name = image.repository
    response = await client.get(f"/v2/{name}/manifests/{image.digest}", headers={"Accept": ACCEPT})
    assert response.status_code == 200, (name, image.digest, response.text)
    assert response.content == image.raw
    for blob in image.blobs:
        got = await client.get(f"/v2/{name}/blobs/{blob}")
        assert got.status_code == 200, (name, blob)
        assert Digest.of(got.content) == blob
    for child in image.children:
        await _pull(client, child)


async def test_unreferenced_blobs_and_their_links_go_referenced_ones_stay(
    store: Store, driver: StorageDriver
) -> None:
    image = await add_image(store, "app", "v1", seed=1)
    orphan = await add_blob(store, "app", b"an upload no manifest ever used" * 10)
    report, lines = await collect(driver)
    assert not await blob_exists(driver, orphan)
    assert not await link_exists(driver, paths.layer_link("app", orphan))
    for blob in image.all_blobs:
        assert await blob_exists(driver, blob), blob
    assert (report.blobs_removed, report.bytes_freed, report.layer_links_removed) == (
        1,
        310,
        1,
    )
    assert report.manifests_marked == 1
    assert report.blobs_marked == len(image.all_blobs)
    assert report.errors == report.warnings == 0
    assert f"blob eligible for deletion: {orphan}" in lines
    assert f"app: layer link eligible for deletion: {orphan}" in lines
    assert f"app: marking manifest {image.digest} " in lines
    assert lines[-1] == "4 blobs marked, 1 blobs and 0 manifests eligible for deletion"
    await served(driver, image)


async def test_dry_run_changes_nothing_but_reports_the_same(
    store: Store, driver: StorageDriver
) -> None:
    await add_image(store, "app", "v1", seed=1)
    await add_image(store, "app", None, seed=2)
    await add_blob(store, "other", b"orphan")
    before = await files_of(driver)
    dry, dry_lines = await collect(driver, dry_run=True, delete_untagged=True)
    assert await files_of(driver) == before
    real, real_lines = await collect(driver, delete_untagged=True)
    assert (dry.blobs_removed, dry.manifests_removed, dry.bytes_freed) == (
        real.blobs_removed,
        real.manifests_removed,
        real.bytes_freed,
    )
    assert (real.blobs_removed, real.manifests_removed) == (5, 1)
    assert sorted(dry_lines) == sorted(real_lines)
    assert "would remove 5 blobs" in dry.summary()
    assert "removed 5 blobs" in real.summary()


async def test_untagged_manifests_are_kept_unless_asked(
    store: Store, driver: StorageDriver
) -> None:
    old = await add_image(store, "app", "latest", seed=1)
    new = await add_image(store, "app", "latest", seed=2)  # `latest` moves on
    report, _ = await collect(driver)
    assert report.blobs_removed == 0
    await served(driver, old)
    report, lines = await collect(driver, delete_untagged=True)
    assert report.manifests_removed == 1
    assert f"manifest eligible for deletion: app@{old.digest}" in lines
    assert not await link_exists(driver, paths.revision_link("app", old.digest))
    # registry:2 removes the tag history entry of a removed manifest too.
    assert not await link_exists(driver, paths.tag_index_link("app", "latest", old.digest))
    assert await link_exists(driver, paths.tag_index_link("app", "latest", new.digest))
    for blob in old.all_blobs:
        assert not await blob_exists(driver, blob)
    await served(driver, new)


async def test_children_of_a_kept_index_stay_untagged_ones_of_a_dropped_index_go(
    store: Store, driver: StorageDriver
) -> None:
    amd64 = await add_image(store, "multi", None, seed=1)
    arm64 = await add_image(store, "multi", None, seed=2)
    kept = await add_index(store, "multi", "v1", [amd64, arm64])
    gone_child = await add_image(store, "multi", None, seed=3)
    dropped = await add_index(store, "multi", None, [gone_child])
    report, _ = await collect(driver, delete_untagged=True)
    assert report.manifests_removed == 2
    await served(driver, kept)
    for blob in dropped.all_blobs:
        assert not await blob_exists(driver, blob)
    assert not await link_exists(driver, paths.revision_link("multi", gone_child.digest))


async def test_referrers_of_kept_manifests_stay_transitively(
    store: Store, driver: StorageDriver
) -> None:
    image = await add_image(store, "app", "v1", seed=1)
    signature = await add_image(store, "app", None, seed=2, subject=image)
    countersigned = await add_image(store, "app", None, seed=3, subject=signature)
    old = await add_image(store, "app", None, seed=4)
    old_sbom = await add_image(store, "app", None, seed=5, subject=old)
    report, _ = await collect(driver, delete_untagged=True)
    assert report.manifests_removed == 2
    for kept in (image, signature, countersigned):
        await served(driver, kept)
    assert not await link_exists(driver, paths.referrer_link("app", old.digest, old_sbom.digest))
    assert await link_exists(driver, paths.referrer_link("app", image.digest, signature.digest))
    for blob in old.all_blobs | old_sbom.all_blobs:
        assert not await blob_exists(driver, blob)


async def test_blobs_shared_across_repositories_stay_while_anyone_uses_them(
    store: Store, driver: StorageDriver
) -> None:
    base = b"a base layer two repositories share" * 20
    first = await add_image(store, "one", None, seed=1, shared=(base,))
    second = await add_image(store, "two", "v1", seed=2, shared=(base,))
    # Mounted into a third repository that no manifest there references.
    await store.repository("three").blobs.link(Digest.of(base))
    report, _ = await collect(driver, delete_untagged=True)
    assert report.manifests_removed == 1
    assert await blob_exists(driver, Digest.of(base))
    # Links are removed only for blobs that are swept.
    assert await link_exists(driver, paths.layer_link("three", Digest.of(base)))
    assert await link_exists(driver, paths.layer_link("one", Digest.of(base)))
    for blob in set(first.blobs) - {Digest.of(base)}:
        assert not await blob_exists(driver, blob)
    await served(driver, second)


async def test_a_manifest_whose_blob_is_missing_does_not_stop_the_collection(
    store: Store, driver: StorageDriver
) -> None:
    broken = await add_image(store, "app", "broken", seed=1)
    await driver.delete(paths.blob_dir(broken.blobs[1]))
    whole = await add_image(store, "app", "whole", seed=2)
    lost = await add_image(store, "app", "lost", seed=3)
    await driver.delete(paths.blob_dir(lost.digest))  # the manifest's own content
    orphan = await add_blob(store, "app", b"orphan")
    report, lines = await collect(driver)
    assert report.errors == 0
    assert report.warnings == 1
    assert any(f"manifest {lost.digest} has no content" in line for line in lines)
    assert not await blob_exists(driver, orphan)
    for blob in (broken.digest, broken.blobs[0], broken.blobs[2]):
        assert await blob_exists(driver, blob)
    await served(driver, whole)


async def test_half_written_repositories_and_blobs(store: Store, driver: StorageDriver) -> None:
    image = await add_image(store, "app", "v1", seed=1)
    # A push that uploaded its layers and never got to the manifest.
    pending = [await add_blob(store, "half/written", bytes([n]) * 100) for n in range(3)]
    # A deleted manifest leaves its revision directory without a link (registry:2 too).
    deleted = await add_image(store, "app", None, seed=2)
    await driver.delete(paths.revision_link("app", deleted.digest))
    # A blob being ingested: its directory holds no `data` yet.
    ingest = await driver.writer(paths.blob_data(Digest.of(b"in flight")))
    await ingest.write(b"in fl")
    # (buffered: the temp file exists, `data` does not)
    # A repository directory with nothing in it and a stray file among blobs.
    await driver.put_content(f"{paths.REPOSITORIES}/empty/_manifests/tags/x/current/bad", b"x")
    report, _ = await collect(driver)
    for blob in pending:
        assert not await blob_exists(driver, blob)
        assert not await link_exists(driver, paths.layer_link("half/written", blob))
    for blob in deleted.all_blobs - set(image.blobs):
        assert not await blob_exists(driver, blob)
    await ingest.write(b"ight")
    await ingest.commit()
    assert await blob_exists(driver, Digest.of(b"in flight"))
    assert report.errors == 0
    assert report.repositories == 3
    await served(driver, image)


async def test_schema1_and_unknown_manifests_keep_what_they_name(
    store: Store, driver: StorageDriver
) -> None:
    """Manifests mirror would refuse today still protect their blobs (old registry:2
    stores hold Docker schema 1 images)."""
    layer = await add_blob(store, "legacy", b"a schema 1 layer")
    raw = json.dumps(
        {"schemaVersion": 1, "name": "legacy", "fsLayers": [{"blobSum": str(layer)}]}
    ).encode()
    digest = (await store.blobs.put(raw)).digest
    await driver.put_content(paths.revision_link("legacy", digest), str(digest).encode())
    await driver.put_content(paths.tag_current("legacy", "old"), str(digest).encode())
    garbage = (await store.blobs.put(b"\xff not json")).digest
    await driver.put_content(paths.revision_link("legacy", garbage), str(garbage).encode())
    report, _ = await collect(driver, delete_untagged=True)
    assert await blob_exists(driver, layer)
    assert await blob_exists(driver, digest)
    assert report.warnings == 1  # the unreadable one
    assert report.manifests_removed == 1


async def test_an_empty_store_collects_nothing(driver: StorageDriver) -> None:
    report, lines = await collect(driver)
    assert (report.repositories, report.blobs_removed, report.blobs_marked) == (0, 0, 0)
    assert lines[-1] == "0 blobs marked, 0 blobs and 0 manifests eligible for deletion"
