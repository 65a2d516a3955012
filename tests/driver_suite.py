"""The shared storage driver suite, run against every driver.

A driver's test module subclasses `DriverSuite` as ``Test<Driver>`` and provides a
function-scoped ``driver`` fixture returning a fresh, empty driver built through
`mirror.store.drivers.create_driver` (so the `CheckedDriver` wrapper is under test too).
The tests state the contract of `mirror.store.driver`; nothing here knows which driver
runs. What a driver declares in its `DriverTraits` is tested by the suites of
`tests/driver_suite_traits.py`, which the class also lists (one of each pair). The
``anyio_backend`` fixture comes from tests/conftest.py.
"""

from __future__ import annotations

import random
import time

import anyio
import pytest

from mirror.store.driver import (
    CHUNK_SIZE,
    InvalidOffset,
    InvalidPath,
    PathNotFound,
    StorageDriver,
    StorageDriverError,
    stat_file,
)

BAD_PATHS = [
    "",
    "a/b",
    "relative",
    "//",
    "/a//b",
    "/a/",
    "/a/../b",
    "/..",
    "/a/./b",
    "/.",
    "/a b",
    "/a\x00b",
    "/a\\b",
    "/caf\u00e9",
    "/a?b",
    "/a%2fb",
    "/a:b",
    "/" + "a" * 5000,
]


def blob(size: int, seed: int = 0) -> bytes:
    """Deterministic pseudo-random content."""
    return random.Random(seed).randbytes(size)


async def chunks_of(driver: StorageDriver, path: str, offset: int = 0) -> list[bytes]:
    stream = await driver.reader(path, offset)
    return [chunk async for chunk in stream]


async def read_all(driver: StorageDriver, path: str, offset: int = 0) -> bytes:
    return b"".join(await chunks_of(driver, path, offset))


async def listed(driver: StorageDriver, path: str) -> list[str]:
    """`list(path)`, or [] where nothing is (drivers without real directories raise then)."""
    try:
        return await driver.list(path)
    except PathNotFound:
        return []


async def write_in_pieces(driver: StorageDriver, path: str, data: bytes, piece: int) -> None:
    writer = await driver.writer(path)
    for start in range(0, len(data), piece):
        await writer.write(data[start : start + piece])
    await writer.commit()


class DriverSuite:
    pytestmark = pytest.mark.anyio

    # -- put_content / get_content -------------------------------------------------------

    async def test_small_round_trip(self, driver: StorageDriver) -> None:
        await driver.put_content("/a/b/c", b"hello")
        assert await driver.get_content("/a/b/c") == b"hello"
        await driver.put_content("/empty", b"")
        assert await driver.get_content("/empty") == b""
        assert await read_all(driver, "/empty") == b""

    async def test_large_round_trip(self, driver: StorageDriver) -> None:
        data = blob(5 * CHUNK_SIZE + 3)
        await driver.put_content("/large", data)
        assert await driver.get_content("/large") == data
        assert await read_all(driver, "/large") == data
        assert (await driver.stat("/large")).size == len(data)

    async def test_put_replaces_content(self, driver: StorageDriver) -> None:
        await driver.put_content("/r", blob(3 * CHUNK_SIZE, 1))
        await driver.put_content("/r", b"short")
        assert await driver.get_content("/r") == b"short"
        assert await driver.list("/") == ["r"]

    async def test_put_accepts_bytearray_and_memoryview(self, driver: StorageDriver) -> None:
        # Typed as bytes, but callers holding a buffer may hand it over as it is.
        await driver.put_content("/ba", bytearray(b"abc"))  # type: ignore[arg-type]
        await driver.put_content("/mv", memoryview(b"xyz"))  # type: ignore[arg-type]
        assert await driver.get_content("/ba") == b"abc"
        assert await driver.get_content("/mv") == b"xyz"

    async def test_the_root_is_not_a_file(self, driver: StorageDriver) -> None:
        for call in (driver.put_content("/", b"root"), driver.writer("/")):
            with pytest.raises(StorageDriverError) as info:
                await call
            assert not isinstance(info.value, InvalidPath)
        assert await driver.list("/") == []

    # -- reader ----------------------------------------------------------------------

    async def test_reader_chunks(self, driver: StorageDriver) -> None:
        data = blob(2 * CHUNK_SIZE + 10)
        await driver.put_content("/blob", data)
        chunks = await chunks_of(driver, "/blob")
        assert all(0 < len(chunk) <= CHUNK_SIZE for chunk in chunks)
        assert all(isinstance(chunk, bytes) for chunk in chunks)
        assert b"".join(chunks) == data

    async def test_reader_offsets(self, driver: StorageDriver) -> None:
        data = blob(CHUNK_SIZE + 100)
        await driver.put_content("/blob", data)
        assert await read_all(driver, "/blob", 7) == data[7:]
        assert await read_all(driver, "/blob", CHUNK_SIZE + 1) == data[CHUNK_SIZE + 1 :]
        assert await chunks_of(driver, "/blob", len(data)) == []
        for offset in (len(data) + 1, -1):
            with pytest.raises(InvalidOffset) as info:
                await driver.reader("/blob", offset)
            assert info.value.path == "/blob"
            assert info.value.driver == driver.name

    async def test_reader_of_a_chunk_aligned_file(self, driver: StorageDriver) -> None:
        data = blob(2 * CHUNK_SIZE)
        await driver.put_content("/aligned", data)
        chunks = await chunks_of(driver, "/aligned")
        assert [len(chunk) for chunk in chunks] == [CHUNK_SIZE, CHUNK_SIZE]

    async def test_reader_raises_at_open(self, driver: StorageDriver) -> None:
        with pytest.raises(PathNotFound) as info:
            await driver.reader("/missing")
        assert info.value.path == "/missing"
        await driver.put_content("/dir/file", b"x")
        with pytest.raises(PathNotFound):
            await driver.reader("/dir")
        with pytest.raises(PathNotFound):
            await driver.get_content("/dir")

    async def test_stream_closed_before_iteration(self, driver: StorageDriver) -> None:
        await driver.put_content("/f", b"abc")
        stream = await driver.reader("/f")
        await stream.aclose()
        await stream.aclose()
        assert [chunk async for chunk in stream] == []

    async def test_stream_closed_midway(self, driver: StorageDriver) -> None:
        await driver.put_content("/f", blob(3 * CHUNK_SIZE))
        stream = await driver.reader("/f")
        assert len(await stream.__anext__()) == CHUNK_SIZE
        await stream.aclose()
        with pytest.raises(StopAsyncIteration):
            await stream.asend(None)

    async def test_cancelled_read_closes_the_stream(self, driver: StorageDriver) -> None:
        await driver.put_content("/f", blob(2 * CHUNK_SIZE))
        stream = await driver.reader("/f")
        with anyio.CancelScope() as scope:
            scope.cancel()
            await stream.__anext__()
        assert scope.cancelled_caught
        assert [chunk async for chunk in stream] == []

    async def test_stream_athrow_closes(self, driver: StorageDriver) -> None:
        await driver.put_content("/f", blob(2 * CHUNK_SIZE))
        for args in (
            (ValueError("instance"),),
            (ValueError,),
            (ValueError, "message"),
            (ValueError, ValueError("value")),
        ):
            stream = await driver.reader("/f")
            await stream.__anext__()
            with pytest.raises(ValueError):
                await stream.athrow(*args)
            assert [chunk async for chunk in stream] == []

    async def test_open_reader_keeps_content_across_replace(self, driver: StorageDriver) -> None:
        old = blob(3 * CHUNK_SIZE + 5, 1)
        await driver.put_content("/x", old)
        by_put = await driver.reader("/x")
        by_writer = await driver.reader("/x", 10)
        by_delete = await driver.reader("/x")
        first = await by_put.__anext__()
        await driver.put_content("/x", b"new")
        assert first + b"".join([c async for c in by_put]) == old
        await write_in_pieces(driver, "/x", blob(CHUNK_SIZE, 2), 4096)
        assert b"".join([c async for c in by_writer]) == old[10:]
        await driver.delete("/x")
        assert b"".join([c async for c in by_delete]) == old

    # -- writer ------------------------------------------------------------------------

    async def test_writer_commit(self, driver: StorageDriver) -> None:
        data = blob(3 * CHUNK_SIZE + 17)
        writer = await driver.writer("/w/blob")
        assert writer.size == 0
        for start in range(0, len(data), 100_000):
            await writer.write(data[start : start + 100_000])
            assert writer.size == min(start + 100_000, len(data))
        with pytest.raises(PathNotFound):
            await driver.stat("/w/blob")
        with pytest.raises(PathNotFound):
            await driver.get_content("/w/blob")
        assert "blob" not in await listed(driver, "/w")
        await writer.commit()
        assert await driver.get_content("/w/blob") == data
        assert await driver.list("/w") == ["blob"]
        await writer.cancel()
        assert await driver.get_content("/w/blob") == data

    async def test_writer_of_nothing(self, driver: StorageDriver) -> None:
        writer = await driver.writer("/zero")
        await writer.write(b"")
        await writer.commit()
        assert await driver.get_content("/zero") == b""

    async def test_writer_replaces_atomically(self, driver: StorageDriver) -> None:
        await driver.put_content("/t", b"old")
        writer = await driver.writer("/t")
        await writer.write(blob(2 * CHUNK_SIZE))
        assert await driver.get_content("/t") == b"old"
        await writer.commit()
        assert await driver.get_content("/t") == blob(2 * CHUNK_SIZE)

    async def test_writer_cancel(self, driver: StorageDriver) -> None:
        writer = await driver.writer("/c/blob")
        await writer.write(blob(CHUNK_SIZE + 1))
        await writer.write(b"tail")
        await writer.cancel()
        await writer.cancel()
        with pytest.raises(PathNotFound):
            await driver.stat("/c/blob")
        assert await listed(driver, "/c") == []

    async def test_closed_writer_refuses(self, driver: StorageDriver) -> None:
        committed = await driver.writer("/done")
        await committed.commit()
        with pytest.raises(StorageDriverError) as info:
            await committed.write(b"more")
        assert info.value.path == "/done"
        assert info.value.driver == driver.name
        with pytest.raises(StorageDriverError):
            await committed.commit()
        cancelled = await driver.writer("/gone")
        await cancelled.cancel()
        for call in (cancelled.commit(), cancelled.write(b"x")):
            with pytest.raises(StorageDriverError):
                await call
        with pytest.raises(PathNotFound):
            await driver.stat("/gone")

    async def test_list_hides_temp_files(self, driver: StorageDriver) -> None:
        await driver.put_content("/l/kept", b"1")
        writers = [await driver.writer(f"/l/new{i}") for i in range(3)]
        await writers[0].write(b"x")
        assert await driver.list("/l") == ["kept"]
        for writer in writers:
            await writer.cancel()
        assert await driver.list("/l") == ["kept"]

    async def test_concurrent_writers_last_commit_wins(self, driver: StorageDriver) -> None:
        first, second = blob(3 * CHUNK_SIZE + 1, 1), blob(2 * CHUNK_SIZE + 7, 2)
        a = await driver.writer("/same")
        b = await driver.writer("/same")
        for start in range(0, len(first), 300_000):
            await a.write(first[start : start + 300_000])
            await b.write(second[start : start + 300_000])
        await a.commit()
        assert await driver.get_content("/same") == first
        await b.commit()
        assert await driver.get_content("/same") == second

    async def test_concurrent_writer_tasks_never_mix(self, driver: StorageDriver) -> None:
        contents = [blob(CHUNK_SIZE + 1000 * i, i) for i in range(4)]
        with anyio.fail_after(30):
            async with anyio.create_task_group() as group:
                for data in contents:
                    group.start_soon(write_in_pieces, driver, "/race", data, 65_536)
        assert await driver.get_content("/race") in contents
        assert await driver.list("/") == ["race"]

    # -- stat / list -------------------------------------------------------------------

    async def test_stat_file_and_directory(self, driver: StorageDriver) -> None:
        before = time.time()
        await driver.put_content("/s/file", b"12345")
        info = await driver.stat("/s/file")
        assert (info.path, info.size, info.is_dir) == ("/s/file", 5, False)
        assert before - 5 <= info.mtime <= time.time() + 5
        directory = await driver.stat("/s")
        assert (directory.path, directory.size, directory.is_dir) == ("/s", 0, True)
        assert (await driver.stat("/")).is_dir

    async def test_stat_file_sees_files_only(self, driver: StorageDriver) -> None:
        # The object stores answer it with one HEAD (`FileStat`), the others with `stat`.
        await driver.put_content("/sf/file", b"12345")
        info = await stat_file(driver, "/sf/file")
        assert (info.path, info.size, info.is_dir) == ("/sf/file", 5, False)
        for missing in ("/sf", "/sf/none", "/"):
            with pytest.raises(PathNotFound) as caught:
                await stat_file(driver, missing)
            assert caught.value.path == missing

    async def test_list_sorted(self, driver: StorageDriver) -> None:
        for name in ("b", "a", "C", "a.b", "_x", "-y", "0"):
            await driver.put_content(f"/dir/{name}", b"")
        await driver.put_content("/dir/sub/deep", b"")
        assert await driver.list("/dir") == sorted(["b", "a", "C", "a.b", "_x", "-y", "0", "sub"])
        assert await driver.list("/") == ["dir"]
        assert await driver.list("/dir/sub") == ["deep"]

    async def test_list_of_an_empty_root(self, driver: StorageDriver) -> None:
        assert await driver.list("/") == []

    # -- missing paths -------------------------------------------------------------------

    async def test_path_not_found_everywhere(self, driver: StorageDriver) -> None:
        await driver.put_content("/file", b"x")
        for path in ("/missing", "/missing/deeper", "/file/child"):
            calls = [
                driver.get_content(path),
                driver.reader(path),
                driver.stat(path),
                driver.list(path),
                driver.delete(path),
                driver.move(path, "/elsewhere"),
            ]
            for call in calls:
                with pytest.raises(PathNotFound) as info:
                    await call
                assert info.value.path == path
                assert info.value.driver == driver.name
        with pytest.raises(PathNotFound):
            await driver.list("/file")
        assert await driver.list("/") == ["file"]

    # -- delete ------------------------------------------------------------------------

    async def test_delete_file(self, driver: StorageDriver) -> None:
        await driver.put_content("/d/a", b"1")
        await driver.put_content("/d/b", b"2")
        await driver.delete("/d/a")
        assert await driver.list("/d") == ["b"]
        with pytest.raises(PathNotFound):
            await driver.delete("/d/a")

    async def test_delete_tree(self, driver: StorageDriver) -> None:
        for path in ("/t/a/1", "/t/a/2", "/t/b", "/t/c/d/e/f", "/other"):
            await driver.put_content(path, b"x")
        await driver.delete("/t")
        with pytest.raises(PathNotFound):
            await driver.stat("/t/a/1")
        assert await driver.list("/") == ["other"]

    async def test_delete_root_empties_it(self, driver: StorageDriver) -> None:
        await driver.put_content("/a/b", b"x")
        await driver.put_content("/c", b"y")
        await driver.delete("/")
        assert await driver.list("/") == []
        await driver.put_content("/again", b"z")
        assert await driver.list("/") == ["again"]

    # -- move --------------------------------------------------------------------------

    async def test_move_replaces(self, driver: StorageDriver) -> None:
        old = blob(2 * CHUNK_SIZE, 1)
        await driver.put_content("/dst/x", old)
        await driver.put_content("/src/x", b"new")
        stream = await driver.reader("/dst/x")
        await driver.move("/src/x", "/dst/x")
        assert await driver.get_content("/dst/x") == b"new"
        assert b"".join([c async for c in stream]) == old
        with pytest.raises(PathNotFound):
            await driver.stat("/src/x")
        assert await listed(driver, "/src") == []

    async def test_move_creates_parents(self, driver: StorageDriver) -> None:
        await driver.put_content("/upload/data", b"blob")
        await driver.move("/upload/data", "/blobs/sha256/ab/abcd/data")
        assert await driver.get_content("/blobs/sha256/ab/abcd/data") == b"blob"

    async def test_move_to_itself(self, driver: StorageDriver) -> None:
        await driver.put_content("/same", b"x")
        await driver.move("/same", "/same")
        assert await driver.get_content("/same") == b"x"

    async def test_move_refusals(self, driver: StorageDriver) -> None:
        await driver.put_content("/m/file", b"f")
        await driver.put_content("/m/dir/x", b"x")
        for src, dst in (
            ("/m/dir", "/m/dir/x/deeper"),
            ("/m/dir", "/m/file"),
            ("/m/file", "/"),
        ):
            with pytest.raises(StorageDriverError) as info:
                await driver.move(src, dst)
            assert not isinstance(info.value, PathNotFound | InvalidPath)
        assert await driver.get_content("/m/file") == b"f"
        assert await driver.get_content("/m/dir/x") == b"x"

    # -- path rules --------------------------------------------------------------------

    @pytest.mark.parametrize("bad", BAD_PATHS)
    async def test_invalid_paths(self, driver: StorageDriver, bad: str) -> None:
        await driver.put_content("/ok", b"x")
        calls = [
            driver.get_content(bad),
            driver.put_content(bad, b"x"),
            driver.reader(bad),
            driver.writer(bad),
            driver.writer(bad, append=True),
            driver.stat(bad),
            driver.list(bad),
            driver.delete(bad),
            driver.move(bad, "/ok"),
            driver.move("/ok", bad),
        ]
        for call in calls:
            with pytest.raises(InvalidPath) as info:
                await call
            assert info.value.path == bad
            assert info.value.driver == driver.name
        assert await driver.list("/") == ["ok"]
