"""What an upload commit publishes is exactly what it verified (issue 8, High 2)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mirror.digests import Digest
from mirror.errors import DigestInvalid
from mirror.store import paths
from mirror.store.drivers import create_driver
from mirror.store.store import Store
from tests.support.oci import digest_of, random_bytes

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["inmemory", "filesystem"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    params = {"rootdirectory": str(tmp_path)} if request.param == "filesystem" else {}
    return Store(create_driver(str(request.param), params))


async def body(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_a_commit_killed_after_sealing_is_resumed(store: Store) -> None:
    uploads = store.repository("r").uploads
    data = random_bytes(300_000, 1)
    status = await uploads.start()
    await uploads.append(status.id, body(data[:100_000]))
    # What a process killed between sealing the data and publishing it leaves behind.
    await store.driver.move(paths.upload_data("r", status.id), paths.upload_sealed("r", status.id))
    assert (await uploads.status(status.id)).size == 100_000
    resumed = await uploads.append(status.id, body(data[100_000:]), start=100_000)
    assert resumed.size == len(data)
    info = await uploads.finish(status.id, _digest(data))
    assert info.size == len(data)
    stream = await store.blobs.open(info.digest)
    assert b"".join([chunk async for chunk in stream]) == data


async def test_a_killed_commit_can_be_finished_by_the_next_put(store: Store) -> None:
    uploads = store.repository("r").uploads
    data = b"sealed and then killed"
    status = await uploads.start()
    await uploads.append(status.id, body(data))
    await store.driver.move(paths.upload_data("r", status.id), paths.upload_sealed("r", status.id))
    with pytest.raises(DigestInvalid):
        await uploads.finish(status.id, _digest(b"something else"))
    status = await uploads.start()
    await uploads.append(status.id, body(data))
    await store.driver.move(paths.upload_data("r", status.id), paths.upload_sealed("r", status.id))
    assert (await uploads.finish(status.id, _digest(data))).size == len(data)


async def test_a_damaged_stored_copy_is_replaced_not_deduplicated_against(store: Store) -> None:
    data = random_bytes(50_000, 2)
    digest = _digest(data)
    # What the old ordering bug left: the verified bytes and then a late chunk.
    await store.driver.put_content(paths.blob_data(digest), data + b"late chunk")
    uploads = store.repository("r").uploads
    status = await uploads.start()
    info = await uploads.finish(status.id, digest, body(data))
    assert info.size == len(data)
    assert await store.driver.get_content(paths.blob_data(digest)) == data


def _digest(data: bytes) -> Digest:
    return Digest.parse(digest_of(data))
