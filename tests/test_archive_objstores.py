"""Export and import on the object stores (moto's S3, Azurite): the same archive goes in
and comes out again, through the store's and the drivers' APIs only."""

from __future__ import annotations

from pathlib import Path

import pytest

from mirror.digests import Digest
from mirror.store import paths
from mirror.store.drivers import create_driver
from mirror.store.store import Store
from tests.support.emulators import AzureEmulator, S3Emulator, unique_root
from tests.support.storefill import put_image, put_index
from tests.test_archive_roundtrip import export_to, import_from, new_store

pytestmark = pytest.mark.anyio


async def round_trip_through(middle: Store, tmp_path: Path) -> None:
    source = new_store("filesystem", tmp_path / "source")
    image = await put_image(source, "team/app", "v1", seed=1, layer_size=300_000)
    index = await put_index(source, "docker.io/library/multi", "2", seed=2, origin="docker.io")
    first, second = tmp_path / "first.tar", tmp_path / "second.tar"
    await export_to(source, first)

    await import_from(middle, first)
    await export_to(middle, second)
    target = new_store("inmemory", tmp_path)
    await import_from(target, second)

    for store in (middle, target):
        assert await store.repository("team/app").tags.get("v1") == image.digest
        multi = store.repository("docker.io/library/multi")
        assert await multi.tags.get("2") == index.digest
        for digest, data in index.all_blobs.items():
            chunks = await multi.blobs.open(digest)
            assert b"".join([c async for c in chunks]) == data
            await store.driver.stat(paths.blob_origin(Digest.parse(str(digest)), "docker.io"))


async def test_s3(s3_emulator: S3Emulator, tmp_path: Path) -> None:
    params = s3_emulator.params(s3_emulator.new_bucket(), rootdirectory=unique_root())
    await round_trip_through(Store(create_driver("s3", params)), tmp_path)


async def test_azure(azure_emulator: AzureEmulator, tmp_path: Path) -> None:
    params = azure_emulator.params(rootdirectory=unique_root())
    await round_trip_through(Store(create_driver("azure", params)), tmp_path)
