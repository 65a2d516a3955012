"""Online garbage collection racing pushes, mounts and deletes (issue 12).

Three pushers and a deleter work on a few repositories that share a small pool of
layers, so that layers keep becoming unreferenced (a delete) and referenced again (an
upload that finds the blob stored, a mount, a manifest PUT on a layer still linked)
while collections run back to back with a short grace delay. A push may be refused
(`MANIFEST_BLOB_UNKNOWN`, as a client would see it, and then pushes again); a push that
was accepted must pull byte-identical at the end, after one more collection that
treats everything as old.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mirror.coordination.accesslog import MetadataAccessLog
from mirror.coordination.metadata import MemoryMetadataStore
from mirror.digests import Digest
from mirror.errors import ManifestBlobUnknown, Unavailable
from mirror.lifecycle.collector import GarbageCollector, GCOptions
from mirror.store.driver import StorageDriver
from mirror.store.drivers import create_driver
from mirror.store.store import Store
from mirror.store.tracking import ContentTracker
from mirror.types import Reference
from tests.support.oci import OCI_MANIFEST, manifest_bytes, random_bytes

pytestmark = pytest.mark.anyio

REPOSITORIES = ("team/a", "team/b", "team/c")
POOL = [random_bytes(2048 + i, 9000 + i) for i in range(10)]
PUSHES = 25  # per pusher
PUSHERS = 3
TRIES = 10


@dataclass(frozen=True)
class Pushed:
    repository: str
    tag: str
    raw: bytes
    layers: tuple[bytes, ...]


async def upload(store: Store, repository: str, data: bytes) -> None:
    uploads = store.repository(repository).uploads
    status = await uploads.start()

    async def body() -> AsyncIterator[bytes]:
        yield data

    await uploads.finish(status.id, Digest.of(data), body(), length=len(data))


async def provide(store: Store, rng: random.Random, repository: str, data: bytes) -> None:
    """A layer for a push: mounted from another repository, or uploaded."""
    digest = Digest.of(data)
    repo = store.repository(repository)
    choice = rng.random()
    if choice < 0.3 and await repo.blobs.is_linked(digest):
        return  # already there: the manifest PUT alone references it again
    if choice < 0.65:
        source = rng.choice([r for r in REPOSITORIES if r != repository])
        if await repo.blobs.mount(digest, store.repository(source).blobs) is not None:
            return
    await upload(store, repository, data)


async def push(store: Store, rng: random.Random, name: str, number: int) -> Pushed | None:
    repository = rng.choice(REPOSITORIES)
    layers = tuple(rng.sample(POOL, 2))
    config = f'{{"pusher": "{name}", "n": {number}}}'.encode()
    raw = manifest_bytes(config, list(layers))
    tag = f"{name}-{number}"
    for _ in range(TRIES):
        try:
            for data in (config, *layers):
                await provide(store, rng, repository, data)
            await store.repository(repository).put_manifest(Reference(tag=tag), raw, OCI_MANIFEST)
        except (ManifestBlobUnknown, Unavailable):
            continue  # what a client is told; it pushes the missing blobs again
        return Pushed(repository, tag, raw, (config, *layers))
    return None


async def check_pulls(store: Store, image: Pushed) -> None:
    repo = store.repository(image.repository)
    manifest = await repo.get_manifest(Reference(tag=image.tag))
    assert manifest.raw == image.raw
    for data in image.layers:
        digest = Digest.of(data)
        stream = await repo.blobs.open(digest)
        got = b"".join([chunk async for chunk in stream])
        assert got == data, f"{image.repository}:{image.tag} lost {digest}"


@pytest.fixture
def driver(driver_name: str, tmp_path: Path) -> StorageDriver:
    params = {"rootdirectory": str(tmp_path / "root")} if driver_name == "filesystem" else {}
    return create_driver(driver_name, params)


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_pushes_mounts_and_deletes_during_online_collections(
    driver: StorageDriver, seed: int
) -> None:
    metadata = MemoryMetadataStore()
    log = MetadataAccessLog(metadata, flush_interval=0.05)
    store = Store(driver, delete_enabled=True, tracker=ContentTracker(log, log))
    rng = random.Random(seed)
    committed: dict[tuple[str, str], Pushed] = {}
    deleted: list[Pushed] = []
    done = asyncio.Event()

    async def pusher(name: str) -> None:
        mine = random.Random(rng.random())
        for number in range(PUSHES):
            image = await push(store, mine, name, number)
            if image is not None:
                committed[(image.repository, image.tag)] = image
            await asyncio.sleep(0)

    async def deleter() -> None:
        while not done.is_set():
            await asyncio.sleep(0.01)
            if len(committed) > 4:
                key = rng.choice(sorted(committed))
                image = committed.pop(key)
                repo = store.repository(image.repository)
                await repo.delete_manifest(Reference(digest=Digest.of(image.raw)))
                deleted.append(image)

    runs = removed = 0

    async def collector() -> None:
        nonlocal runs, removed
        while not done.is_set():
            report = await GarbageCollector(
                driver, GCOptions(delay=0.2), access_log=log, marks=log
            ).run()
            runs += 1
            removed += report.blobs_removed
            await asyncio.sleep(0.005)

    async def pushers() -> None:
        try:
            await asyncio.gather(*(pusher(f"p{i}") for i in range(PUSHERS)))
        finally:
            done.set()

    started = time.monotonic()
    await asyncio.wait_for(asyncio.gather(pushers(), deleter(), collector()), 120)
    assert runs >= 3, f"only {runs} collections ran in {time.monotonic() - started:.1f}s"
    accepted = len(committed) + len(deleted)
    assert accepted >= PUSHERS * PUSHES // 2, f"only {accepted} pushes were accepted"
    for image in committed.values():
        await check_pulls(store, image)
    # Everything old now: a final collection keeps exactly what is referenced.
    await log.flush()
    final = await GarbageCollector(driver, GCOptions(), clock=lambda: time.time() + 3600.0).run()
    for image in committed.values():
        await check_pulls(store, image)
    assert removed + final.blobs_removed > 0, "deletes never freed anything: no race tested"
    await log.aclose()
