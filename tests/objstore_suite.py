"""What the object-store drivers (s3, azure) share beyond the driver suite, run against each
on its emulator.

A driver's test class lists `ObjectStoreSuite` and provides the fixtures ``driver`` (built
with part size `PART` and root directory ``root``), ``root`` and ``raw_keys`` (every key in
the bucket or container, read past the driver), and ``pending_uploads`` (unfinished
multipart uploads left in the bucket, or None where the service cannot tell).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import pytest

from mirror.store.driver import (
    CHUNK_SIZE,
    PathNotFound,
    RedirectURL,
    StorageDriver,
)
from tests.driver_suite import blob, chunks_of, read_all

PART = 5 * 1024 * 1024  # the smallest S3 part: more than one part costs the least here
RawKeys = Callable[[], Awaitable[list[str]]]
PendingUploads = Callable[[], Awaitable[list[str] | None]]


class ObjectStoreSuite:
    pytestmark = pytest.mark.anyio

    async def test_keys_follow_the_registry_layout(
        self, driver: StorageDriver, root: str, raw_keys: RawKeys
    ) -> None:
        data = "/docker/registry/v2/blobs/sha256/ab/abcd/data"
        link = "/docker/registry/v2/repositories/a/b/_layers/sha256/abcd/link"
        await driver.put_content(link, b"sha256:abcd")
        writer = await driver.writer(data)
        await writer.write(b"blob")
        assert await raw_keys() == [f"{root}{link}"]
        await writer.commit()
        assert await raw_keys() == [f"{root}{data}", f"{root}{link}"]
        assert await driver.list("/docker/registry/v2/repositories/a") == ["b"]

    async def test_multipart_write_is_atomic(
        self, driver: StorageDriver, raw_keys: RawKeys
    ) -> None:
        data = blob(3 * PART + 17, 7)
        writer = await driver.writer("/big")
        for start in range(0, len(data), 300_000):
            await writer.write(data[start : start + 300_000])
        assert writer.size == len(data)
        with pytest.raises(PathNotFound):
            await driver.stat("/big")
        assert await raw_keys() == []
        await writer.commit()
        assert (await driver.stat("/big")).size == len(data)
        chunks = await chunks_of(driver, "/big")
        assert all(len(chunk) == CHUNK_SIZE for chunk in chunks[:-1])
        assert b"".join(chunks) == data
        assert await read_all(driver, "/big", PART + 5) == data[PART + 5 :]

    async def test_cancelled_multipart_write_leaves_nothing(
        self, driver: StorageDriver, raw_keys: RawKeys, pending_uploads: PendingUploads
    ) -> None:
        writer = await driver.writer("/gone")
        await writer.write(blob(2 * PART + 1))
        await writer.cancel()
        await writer.cancel()
        with pytest.raises(PathNotFound):
            await driver.stat("/gone")
        assert await raw_keys() == []
        assert await pending_uploads() in ([], None)

    async def test_redirect_urls_serve_the_object(self, driver: StorageDriver) -> None:
        assert isinstance(driver, RedirectURL)
        content = blob(100_000, 3)
        await driver.put_content("/r/blob", content)
        get = await driver.redirect_url("/r/blob", "GET")
        head = await driver.redirect_url("/r/blob", "HEAD")
        assert get is not None and head is not None
        async with httpx.AsyncClient(trust_env=False, timeout=10) as client:
            fetched = await client.get(get)
            assert fetched.status_code == 200
            assert fetched.content == content
            headed = await client.head(head)
            assert headed.status_code == 200
            assert int(headed.headers["content-length"]) == len(content)
        assert await driver.redirect_url("/r/blob", "PUT") is None

    async def test_move_copies_then_deletes(
        self, driver: StorageDriver, root: str, raw_keys: RawKeys
    ) -> None:
        data = blob(PART + 3, 5)
        await driver.put_content("/up/data", data)
        await driver.move("/up/data", "/blobs/x/data")
        assert await raw_keys() == [f"{root}/blobs/x/data"]
        assert await driver.get_content("/blobs/x/data") == data
