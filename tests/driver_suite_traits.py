"""Trait suites of the shared driver suite: one of each pair applies to a driver.

`DirectorySuite` / `PrefixSuite`: ``traits.directories`` true (real directories, as on a
file system) or false (directories are key prefixes, as on object stores).
`AppendSuite` / `NoAppendSuite`: ``traits.append``.

A driver's test class lists `DriverSuite` and one suite of each pair; each suite first
checks that the driver declares what the suite tests.
"""

from __future__ import annotations

import gc
import time

import anyio
import pytest

from mirror.store.driver import (
    CHUNK_SIZE,
    FileBusy,
    InvalidPath,
    OperationUnsupported,
    PathNotFound,
    StorageDriver,
    StorageDriverError,
)
from tests.driver_suite import blob, read_all


class DirectorySuite:
    pytestmark = pytest.mark.anyio

    async def test_declares_directories(self, driver: StorageDriver) -> None:
        assert driver.traits.directories

    async def test_writer_creates_its_parents(self, driver: StorageDriver) -> None:
        writer = await driver.writer("/c/blob")
        await writer.write(b"x")
        assert await driver.list("/c") == []
        await writer.cancel()
        assert await driver.list("/c") == []

    async def test_an_emptied_directory_stays(self, driver: StorageDriver) -> None:
        await driver.put_content("/src/x", b"1")
        await driver.move("/src/x", "/dst/x")
        assert await driver.list("/src") == []
        assert (await driver.stat("/src")).is_dir

    async def test_move_file_over_a_directory_fails(self, driver: StorageDriver) -> None:
        await driver.put_content("/m/file", b"f")
        await driver.put_content("/m/dir/x", b"x")
        with pytest.raises(StorageDriverError) as info:
            await driver.move("/m/file", "/m/dir")
        assert not isinstance(info.value, PathNotFound | InvalidPath)
        assert await driver.get_content("/m/file") == b"f"
        assert await driver.get_content("/m/dir/x") == b"x"

    async def test_put_over_a_directory_fails(self, driver: StorageDriver) -> None:
        await driver.put_content("/d/x", b"1")
        with pytest.raises(StorageDriverError) as info:
            await driver.put_content("/d", b"2")
        assert not isinstance(info.value, PathNotFound | InvalidPath)
        assert info.value.path == "/d"
        assert await driver.list("/") == ["d"]
        assert await driver.list("/d") == ["x"]

    async def test_a_file_in_the_way_fails(self, driver: StorageDriver) -> None:
        await driver.put_content("/f", b"file")
        with pytest.raises(StorageDriverError) as info:
            await driver.put_content("/f/child", b"x")
        assert not isinstance(info.value, PathNotFound | InvalidPath)
        with pytest.raises(StorageDriverError):
            await driver.writer("/f/child")
        with pytest.raises(StorageDriverError):
            await driver.writer("/f/child", append=True)
        assert await driver.get_content("/f") == b"file"

    async def test_writer_over_a_directory_fails(self, driver: StorageDriver) -> None:
        await driver.put_content("/d/x", b"1")
        with pytest.raises(StorageDriverError):
            await driver.writer("/d")
        with pytest.raises(StorageDriverError):
            await driver.writer("/d", append=True)
        assert await driver.list("/d") == ["x"]

    async def test_commit_after_the_tree_was_deleted(self, driver: StorageDriver) -> None:
        writer = await driver.writer("/v/x")
        await writer.write(b"data")
        await driver.delete("/v")
        with pytest.raises(StorageDriverError) as info:
            await writer.commit()
        assert info.value.path == "/v/x"
        await writer.cancel()
        with pytest.raises(PathNotFound):
            await driver.stat("/v/x")
        abandoned = await driver.writer("/v/y")
        await driver.delete("/v")
        await abandoned.cancel()
        with pytest.raises(PathNotFound):
            await driver.stat("/v")

    async def test_commit_over_a_new_directory_fails(self, driver: StorageDriver) -> None:
        writer = await driver.writer("/n")
        await writer.write(b"data")
        await driver.put_content("/n/child", b"x")
        with pytest.raises(StorageDriverError):
            await writer.commit()
        assert await driver.list("/") == ["n"]
        assert await driver.list("/n") == ["child"]

    async def test_move_directory(self, driver: StorageDriver) -> None:
        await driver.put_content("/tree/a/b", b"x")
        await driver.move("/tree", "/moved/here")
        assert await driver.get_content("/moved/here/a/b") == b"x"
        assert await driver.list("/") == ["moved"]

    async def test_move_directory_over_an_empty_one(self, driver: StorageDriver) -> None:
        await driver.put_content("/full/x", b"x")
        await driver.put_content("/empty/x", b"")
        await driver.delete("/empty/x")
        await driver.move("/full", "/empty")
        assert await driver.list("/") == ["empty"]
        assert await driver.get_content("/empty/x") == b"x"


class PrefixSuite:
    """Directories that are key prefixes (object stores)."""

    pytestmark = pytest.mark.anyio

    async def test_declares_no_directories(self, driver: StorageDriver) -> None:
        assert not driver.traits.directories

    async def test_a_directory_exists_while_it_holds_objects(self, driver: StorageDriver) -> None:
        writer = await driver.writer("/c/blob")
        await writer.write(b"x")
        for call in (driver.list("/c"), driver.stat("/c")):
            with pytest.raises(PathNotFound):
                await call
        await writer.commit()
        assert await driver.list("/c") == ["blob"]
        assert (await driver.stat("/c")).is_dir
        await driver.delete("/c/blob")
        for call in (driver.list("/c"), driver.stat("/c")):
            with pytest.raises(PathNotFound):
                await call
        with pytest.raises(PathNotFound):
            await driver.delete("/c")
        assert await driver.list("/") == []

    async def test_a_directory_mtime_is_the_time_of_asking(self, driver: StorageDriver) -> None:
        # Object stores keep no time for a prefix; "just now" keeps mtime caches honest.
        await driver.put_content("/d/x", b"1")
        before = time.time()
        info = await driver.stat("/d")
        assert info.is_dir
        assert before - 1 <= info.mtime <= time.time() + 1

    async def test_a_name_can_be_file_and_directory(self, driver: StorageDriver) -> None:
        await driver.put_content("/n/x", b"child")
        await driver.put_content("/n", b"file")
        info = await driver.stat("/n")
        assert (info.is_dir, info.size) == (False, 4)
        assert await driver.get_content("/n") == b"file"
        assert await driver.list("/") == ["n"]
        assert await driver.list("/n") == ["x"]
        await driver.delete("/n")
        assert await driver.list("/") == []

    async def test_delete_leaves_siblings_with_the_same_prefix(self, driver: StorageDriver) -> None:
        for path in ("/a/b", "/a/b/c", "/a/bc", "/a/b-d/e"):
            await driver.put_content(path, b"x")
        await driver.delete("/a/b")
        assert await driver.list("/a") == ["b-d", "bc"]

    async def test_moving_a_directory_is_unsupported(self, driver: StorageDriver) -> None:
        await driver.put_content("/tree/a/b", b"x")
        for dst in ("/moved", "/tree"):
            with pytest.raises(OperationUnsupported):
                await driver.move("/tree", dst)
        assert await driver.get_content("/tree/a/b") == b"x"
        assert await driver.list("/") == ["tree"]

    async def test_many_objects_list_and_delete(self, driver: StorageDriver) -> None:
        # More than one list page and one delete batch of some stores (S3: 1000).
        names = [f"{i:04d}" for i in range(1100)]
        async with anyio.create_task_group() as group:
            for name in names:
                group.start_soon(driver.put_content, f"/many/{name}", b"")
        assert await driver.list("/many") == names
        await driver.delete("/many")
        assert await driver.list("/") == []


class AppendSuite:
    pytestmark = pytest.mark.anyio

    async def test_declares_append(self, driver: StorageDriver) -> None:
        assert driver.traits.append

    async def test_append_writer(self, driver: StorageDriver) -> None:
        await driver.put_content("/up/data", b"abc")
        writer = await driver.writer("/up/data", append=True)
        assert writer.size == 3
        await writer.write(b"def")
        await writer.write(blob(CHUNK_SIZE))
        assert writer.size == 6 + CHUNK_SIZE
        await writer.commit()
        assert await driver.get_content("/up/data") == b"abcdef" + blob(CHUNK_SIZE)
        await writer.cancel()
        assert (await driver.stat("/up/data")).size == 6 + CHUNK_SIZE

    async def test_append_writer_cancel_truncates(self, driver: StorageDriver) -> None:
        await driver.put_content("/up/data", b"abc")
        writer = await driver.writer("/up/data", append=True)
        await writer.write(b"xyz")
        await writer.write(blob(2 * CHUNK_SIZE))  # a large write reaches the file at once
        assert await driver.get_content("/up/data") == b"abcxyz" + blob(2 * CHUNK_SIZE)
        await writer.cancel()
        await writer.cancel()
        assert await driver.get_content("/up/data") == b"abc"
        with pytest.raises(StorageDriverError):
            await writer.write(b"late")

    async def test_append_writer_creates_and_rolls_back(self, driver: StorageDriver) -> None:
        writer = await driver.writer("/new/data", append=True)
        assert writer.size == 0
        await writer.write(b"123")
        await writer.cancel()
        with pytest.raises(PathNotFound):
            await driver.stat("/new/data")
        writer = await driver.writer("/new/data", append=True)
        await writer.write(b"123")
        await writer.commit()
        assert await driver.get_content("/new/data") == b"123"

    async def test_append_writers_in_sequence(self, driver: StorageDriver) -> None:
        expected = b""
        for i in range(3):
            piece = blob(CHUNK_SIZE // 2 + i, i)
            writer = await driver.writer("/chunks", append=True)
            assert writer.size == len(expected)
            await writer.write(piece)
            await writer.commit()
            expected += piece
        assert await read_all(driver, "/chunks") == expected

    async def test_open_readers_follow_appends(self, driver: StorageDriver) -> None:
        await driver.put_content("/grow", b"abc")
        before = await driver.reader("/grow")
        writer = await driver.writer("/grow", append=True)
        await writer.write(blob(CHUNK_SIZE))
        during = await driver.reader("/grow", 3)
        await writer.commit()
        assert b"".join([c async for c in before]) == b"abc" + blob(CHUNK_SIZE)
        assert b"".join([c async for c in during]) == blob(CHUNK_SIZE)
        stream = await driver.reader("/grow")
        writer = await driver.writer("/grow", append=True)
        await writer.write(blob(CHUNK_SIZE, 1))
        await writer.cancel()
        assert b"".join([c async for c in stream]) == b"abc" + blob(CHUNK_SIZE)

    async def test_a_file_being_appended_to_cannot_be_moved(self, driver: StorageDriver) -> None:
        """What an upload commit relies on: no append lands in a file after its move."""
        await driver.put_content("/up/data", b"abc")
        writer = await driver.writer("/up/data", append=True)
        await writer.write(b"def")
        with pytest.raises(FileBusy):
            await driver.move("/up/data", "/blob/data")
        await writer.write(b"ghi")
        await writer.commit()
        await driver.move("/up/data", "/blob/data")
        assert await driver.get_content("/blob/data") == b"abcdefghi"
        writer = await driver.writer("/blob/data", append=True)
        await writer.cancel()
        await driver.move("/blob/data", "/up/data")
        assert await driver.get_content("/up/data") == b"abcdefghi"

    async def test_an_abandoned_append_writer_frees_its_file(self, driver: StorageDriver) -> None:
        writer = await driver.writer("/up/data", append=True)
        await writer.write(b"kept?")
        del writer
        gc.collect()
        await driver.move("/up/data", "/moved")
        again = await driver.writer("/moved", append=True)
        await again.commit()

    async def test_one_append_writer_at_a_time(self, driver: StorageDriver) -> None:
        first = await driver.writer("/up/data", append=True)
        await first.write(b"one")
        with pytest.raises(FileBusy):
            await driver.writer("/up/data", append=True)
        await first.commit()
        second = await driver.writer("/up/data", append=True)
        await second.write(b"two")
        await second.commit()
        assert await driver.get_content("/up/data") == b"onetwo"


class NoAppendSuite:
    pytestmark = pytest.mark.anyio

    async def test_append_writers_are_refused(self, driver: StorageDriver) -> None:
        assert not driver.traits.append
        await driver.put_content("/up/data", b"abc")
        for path in ("/up/data", "/new/data"):
            with pytest.raises(OperationUnsupported) as info:
                await driver.writer(path, append=True)
            assert (info.value.path, info.value.driver) == (path, driver.name)
        assert await driver.get_content("/up/data") == b"abc"
        assert await driver.list("/") == ["up"]
