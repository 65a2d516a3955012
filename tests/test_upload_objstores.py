"""Upload sessions on the object stores (moto's S3, Azurite): each chunk an object, hash
state saved per offset, sessions continued by another store instance (replica)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from typing import Any

import pytest

from mirror.coordination.leases import LocalCoordinator
from mirror.digests import Digest
from mirror.errors import BlobUploadUnknown, DigestInvalid, SizeInvalid, UploadRangeInvalid
from mirror.store import paths
from mirror.store.driver import PathNotFound, StorageDriver
from mirror.store.drivers import create_driver
from mirror.store.store import Store
from mirror.store.upload_parts import PartUploadStore
from tests.support.emulators import AzureEmulator, S3Emulator, unique_root
from tests.support.oci import random_bytes

pytestmark = pytest.mark.anyio
PART = 5 * 1024 * 1024


class ReadCounting:
    """A driver that counts the reads of upload chunks (everything else passes through)."""

    def __init__(self, inner: StorageDriver) -> None:
        self._inner = inner
        self.part_reads = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def reader(self, path: str, offset: int = 0) -> AsyncGenerator[bytes, None]:
        if "/parts/" in path:
            self.part_reads += 1
        return await self._inner.reader(path, offset)


@pytest.fixture(params=["s3", "azure"])
def driver(request: pytest.FixtureRequest) -> Iterator[StorageDriver]:
    if request.param == "s3":
        s3: S3Emulator = request.getfixturevalue("s3_emulator")
        params = s3.params(s3.new_bucket(), rootdirectory=unique_root(), chunksize=PART)
    else:
        azure: AzureEmulator = request.getfixturevalue("azure_emulator")
        params = azure.params(rootdirectory=unique_root())
    yield create_driver(str(request.param), params)


async def body(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def read_blob(store: Store, digest: Digest) -> bytes:
    stream = await store.blobs.open(digest)
    return b"".join([chunk async for chunk in stream])


def sha256(data: bytes) -> Digest:
    return Digest.of(data, "sha256")


async def test_a_chunked_upload_is_continued_and_committed_by_another_replica(
    driver: StorageDriver,
) -> None:
    counting = ReadCounting(driver)
    shared = LocalCoordinator()  # the replicas' Redis, here one process's leases
    a = Store(driver, coordinator=shared)
    b = Store(counting, coordinator=shared)
    assert isinstance(a.repository("r").uploads, PartUploadStore)
    data = random_bytes(PART + 300_000, 3)
    status = await a.repository("r").uploads.start()
    await a.repository("r").uploads.append(status.id, body(data[:PART], data[PART : PART + 1]))
    assert (await b.repository("r").uploads.status(status.id)).size == PART + 1
    with pytest.raises(UploadRangeInvalid):
        await b.repository("r").uploads.append(status.id, body(b"x"), start=5)
    more = await b.repository("r").uploads.append(
        status.id, body(data[PART + 1 : PART + 200_000]), start=PART + 1
    )
    assert more.size == PART + 200_000
    info = await b.repository("r").uploads.finish(
        status.id, sha256(data), body(data[PART + 200_000 :])
    )
    assert info.size == len(data)
    # Verified from the saved hash states: the chunks were read only to be concatenated.
    assert counting.part_reads == 3
    assert await read_blob(a, info.digest) == data
    assert await a.repository("r").blobs.stat(info.digest)
    with pytest.raises(BlobUploadUnknown):
        await a.repository("r").uploads.status(status.id)
    assert await _session_objects(driver, status.id) == []


async def test_one_chunk_is_moved_into_place_without_being_read(driver: StorageDriver) -> None:
    counting = ReadCounting(driver)
    store = Store(counting)
    uploads = store.repository("r").uploads
    data = random_bytes(PART * 2 + 17, 4)  # several multipart parts in one chunk
    status = await uploads.start()
    await uploads.append(status.id, body(data))
    info = await uploads.finish(status.id, sha256(data))
    assert counting.part_reads == 0
    assert await read_blob(store, info.digest) == data


async def test_a_failed_chunk_leaves_nothing_and_a_wrong_digest_discards(
    driver: StorageDriver,
) -> None:
    store = Store(driver)
    uploads = store.repository("r").uploads
    status = await uploads.start()
    await uploads.append(status.id, body(b"first "))
    with pytest.raises(SizeInvalid):
        await uploads.append(status.id, body(b"short"), length=10)
    assert (await uploads.status(status.id)).size == 6

    async def broken() -> AsyncIterator[bytes]:
        yield b"some bytes"
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await uploads.append(status.id, broken())
    assert (await uploads.status(status.id)).size == 6
    with pytest.raises(DigestInvalid):
        await uploads.finish(status.id, sha256(b"something else"))
    assert await _session_objects(driver, status.id) == []
    assert not await store.blobs.exists(sha256(b"first "))


async def test_empty_and_monolithic_uploads_and_a_missing_hash_state(
    driver: StorageDriver,
) -> None:
    store = Store(driver)
    uploads = store.repository("r").uploads
    empty = await uploads.start()
    assert (await uploads.finish(empty.id, sha256(b""))).size == 0
    assert await read_blob(store, sha256(b"")) == b""
    whole = await uploads.start()
    data = b"monolithic" * 1000
    assert (await uploads.finish(whole.id, sha256(data), body(data))).size == len(data)
    # A chunk whose process died before saving its hash state: the commit reads it again.
    lost = await uploads.start()
    await uploads.append(lost.id, body(b"abc"))
    await uploads.append(lost.id, body(b"def"))
    await driver.delete(paths.upload_hashstate("r", lost.id, "sha256", 6))
    assert (await uploads.finish(lost.id, sha256(b"abcdef"))).size == 6
    assert await read_blob(store, sha256(b"abcdef")) == b"abcdef"
    # sha512 is hashed at commit (the running state is sha256).
    other = await uploads.start()
    await uploads.append(other.id, body(b"x" * 1000))
    info = await uploads.finish(other.id, Digest.of(b"x" * 1000, "sha512"))
    assert info.size == 1000


async def _session_objects(driver: StorageDriver, upload_id: str) -> list[str]:
    try:
        return await driver.list(paths.upload_dir("r", upload_id))
    except PathNotFound:
        return []
