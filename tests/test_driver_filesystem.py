"""The shared driver suite against the file system driver, plus its own checks."""

from __future__ import annotations

import gc
import os
import re
import resource
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import pytest

from mirror.store.driver import (
    CHUNK_SIZE,
    InvalidPath,
    LocalPath,
    PathNotFound,
    RedirectURL,
    StorageDriver,
    StorageDriverError,
    TempFileCleanup,
)
from mirror.store.drivers import create_driver, driver_names
from tests.driver_suite import DriverSuite, blob, read_all
from tests.driver_suite_traits import AppendSuite, DirectorySuite
from tests.support.binaries import require_binary

pytestmark = pytest.mark.anyio


def make(root: Path) -> StorageDriver:
    return create_driver("filesystem", {"rootdirectory": str(root)})


class TestFilesystemDriver(DriverSuite, DirectorySuite, AppendSuite):
    @pytest.fixture
    def driver(self, tmp_path: Path) -> StorageDriver:
        return make(tmp_path / "root")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_root_is_created_and_maps_to_slash(tmp_path: Path) -> None:
    root = tmp_path / "a" / "b"
    driver = make(root)
    assert root.is_dir()
    assert isinstance(driver, LocalPath)
    assert not isinstance(driver, RedirectURL)
    assert isinstance(driver, TempFileCleanup)
    assert driver.local_path("/") == str(root)
    assert driver.local_path("/x/y") == str(root / "x" / "y")
    with pytest.raises(InvalidPath):
        driver.local_path("/x/../../etc")
    await driver.put_content("/x/y", b"content")
    assert (root / "x" / "y").read_bytes() == b"content"
    (root / "outside").write_bytes(b"made by hand")
    assert await driver.get_content("/outside") == b"made by hand"


async def test_relative_root_is_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    driver = make(Path("rel"))
    assert isinstance(driver, LocalPath)
    assert driver.local_path("/f") == str(tmp_path / "rel" / "f")


async def test_no_temp_debris_after_failures_and_cancels(tmp_path: Path) -> None:
    driver = make(tmp_path)
    await driver.put_content("/d/x", b"1")
    with pytest.raises(StorageDriverError):
        await driver.put_content("/d", b"over a directory")
    writer = await driver.writer("/w/blob")
    await writer.write(blob(3 * CHUNK_SIZE))
    await writer.cancel()
    abandoned = await driver.writer("/w/other")
    await abandoned.write(b"x")
    del abandoned
    gc.collect()
    assert sorted(os.listdir(tmp_path)) == ["d", "w"]
    assert os.listdir(tmp_path / "d") == ["x"]
    assert os.listdir(tmp_path / "w") == []


_CRASH = """
import os, sys, anyio
from mirror.store.drivers import create_driver

async def main() -> None:
    driver = create_driver("filesystem", {"rootdirectory": sys.argv[1]})
    await driver.put_content("/blob", b"committed")
    writer = await driver.writer("/blob")
    await writer.write(os.urandom(3 * 1024 * 1024 + 5))
    await writer.write(b"tail")
    appender = await driver.writer("/upload", append=True)
    await appender.write(b"x" * (2 * 1024 * 1024))
    os._exit(3)

anyio.run(main)
"""


async def test_crash_mid_write_leaves_destination_alone(tmp_path: Path) -> None:
    with anyio.fail_after(60):
        done = await anyio.run_process([sys.executable, "-c", _CRASH, str(tmp_path)], check=False)
    assert done.returncode == 3, done.stderr.decode()
    driver = make(tmp_path)
    assert await driver.get_content("/blob") == b"committed"
    assert await driver.list("/") == ["blob", "upload"]
    debris = [name for name in os.listdir(tmp_path) if name.startswith(".blob.tmp-")]
    assert len(debris) == 1
    assert (await driver.stat("/" + debris[0])).size == 3 * 1024 * 1024 + 5
    writer = await driver.writer("/blob")
    await writer.write(b"after the crash")
    await writer.commit()
    assert await driver.get_content("/blob") == b"after the crash"


async def test_no_descriptor_leaks(tmp_path: Path) -> None:
    driver = make(tmp_path)
    data = blob(2 * CHUNK_SIZE + 1)
    await driver.put_content("/f", data)
    await driver.put_content("/d/x", b"")
    before = open_fds()
    unstarted = await driver.reader("/f")
    await unstarted.aclose()
    dropped = await driver.reader("/f")
    await dropped.__anext__()
    del dropped
    gc.collect()
    assert await read_all(driver, "/f") == data
    await driver.get_content("/f")
    for missing in ("/d", "/nope"):
        with pytest.raises(PathNotFound):
            await driver.reader(missing)
    with pytest.raises(StorageDriverError):
        await driver.reader("/f", len(data) + 1)
    for append in (False, True):
        committed = await driver.writer("/w", append=append)
        await committed.write(data)
        await committed.commit()
        cancelled = await driver.writer("/w", append=append)
        await cancelled.write(b"x")
        await cancelled.cancel()
        abandoned = await driver.writer("/w", append=append)
        del abandoned
        gc.collect()
    assert open_fds() == before


async def test_os_errors_become_driver_errors(tmp_path: Path) -> None:
    driver = make(tmp_path)
    # A valid component too long for the OS once it gets the temp-file suffix.
    long = "/" + "n" * 250
    for call in (driver.put_content(long, b"x"), driver.writer(long)):
        with pytest.raises(StorageDriverError) as info:
            await call
        assert not isinstance(info.value, OSError)
        assert isinstance(info.value.__cause__, OSError)
        assert (info.value.path, info.value.driver) == (long, "filesystem")
        assert "File name too long" in str(info.value)
    assert await driver.list("/") == []


@contextmanager
def file_size_limit(limit: int) -> Iterator[None]:
    """Make writes past `limit` bytes fail with EFBIG (Python ignores SIGXFSZ)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


async def test_failed_writes_leave_nothing_behind(tmp_path: Path) -> None:
    driver = make(tmp_path)
    await driver.put_content("/keep", b"old")
    with file_size_limit(2 * CHUNK_SIZE):
        with pytest.raises(StorageDriverError, match="File too large") as info:
            await driver.put_content("/keep", blob(3 * CHUNK_SIZE))
        assert info.value.path == "/keep"

        broken = await driver.writer("/keep")
        await broken.write(blob(CHUNK_SIZE))
        await broken.write(blob(CHUNK_SIZE // 2))
        with pytest.raises(StorageDriverError, match="File too large"):
            await broken.write(blob(CHUNK_SIZE))
        for call in (broken.write(b"x"), broken.commit()):
            with pytest.raises(StorageDriverError, match="earlier write failed"):
                await call
        await broken.cancel()

        failing = await driver.writer("/keep")
        await failing.write(blob(2 * CHUNK_SIZE))
        await failing.write(b"one byte too many")
        with pytest.raises(StorageDriverError, match="File too large"):
            await failing.commit()
        await failing.cancel()

        appender = await driver.writer("/keep", append=True)
        await appender.write(blob(CHUNK_SIZE))
        await appender.write(blob(CHUNK_SIZE - 1))
        with pytest.raises(StorageDriverError, match="File too large"):
            await appender.commit()
        await appender.cancel()
    assert await driver.get_content("/keep") == b"old"
    assert os.listdir(tmp_path) == ["keep"]


_TRACED = """
import sys, anyio
from mirror.store.drivers import create_driver

async def main() -> None:
    driver = create_driver("filesystem", {"rootdirectory": sys.argv[1]})
    await driver.put_content("/put/one", b"x" * 100)
    writer = await driver.writer("/stream/two")
    for _ in range(256):
        await writer.write(b"y" * 16384)
    await writer.commit()
    appender = await driver.writer("/append/three", append=True)
    await appender.write(b"z" * 10)
    await appender.commit()
    await driver.move("/put/one", "/moved/four")

anyio.run(main)
"""


async def test_commits_are_fsynced_in_order(tmp_path: Path) -> None:
    root = str(tmp_path / "root")
    command = [require_binary("strace"), "-f", "-y", "-qq", "-e", "trace=fsync,rename,write,writev"]
    with anyio.fail_after(120):
        done = await anyio.run_process([*command, sys.executable, "-c", _TRACED, root], check=False)
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    calls = [
        re.sub(r"^\[pid\s+\d+\] ", "", line)
        for line in done.stderr.decode().splitlines()
        if root in line
    ]

    def index(pattern: str, start: int = 0) -> int:
        for i in range(start, len(calls)):
            if re.search(pattern, calls[i]):
                return i
        raise AssertionError(f"no {pattern!r} after call {start} in:\n" + "\n".join(calls))

    for directory, name in (("put", "one"), ("stream", "two")):
        tmp = rf"{root}/{directory}/\.{name}\.tmp-[0-9a-f]{{32}}"
        synced = index(rf"^fsync\(\d+<{tmp}>")
        renamed = index(rf'^rename\("{tmp}", "{root}/{directory}/{name}"\)', synced)
        dir_synced = index(rf"^fsync\(\d+<{root}/{directory}>", renamed)
        # New parent directories are made durable in their own parents, at the commit
        # (not at creation, which would delay the first byte of a download).
        index(rf"^fsync\(\d+<{root}>", dir_synced)
    writes = [call for call in calls if re.search(r"^writev?\(\d+<[^>]*stream/\.two", call)]
    # 4 MiB sent as 16 KiB pieces: buffered into one write per MiB.
    assert 1 <= len(writes) <= 4, writes
    index(rf"^fsync\(\d+<{root}/append/three>")
    moved = index(rf'^rename\("{root}/put/one", "{root}/moved/four"\)')
    index(rf"^fsync\(\d+<{root}/moved>", moved)


def test_factory_rejects_bad_configuration(tmp_path: Path) -> None:
    assert driver_names() == ["azure", "filesystem", "inmemory", "s3"]
    with pytest.raises(ValueError, match=r"unknown storage driver 's4'.*filesystem, inmemory"):
        create_driver("s4", {})
    for params in ({}, {"rootdirectory": ""}, {"rootdirectory": 5}):
        with pytest.raises(ValueError, match="needs 'rootdirectory'"):
            create_driver("filesystem", params)
    with pytest.raises(ValueError, match=r"does not take parameter.*maxthreads.*rootdirectory"):
        create_driver("filesystem", {"rootdirectory": str(tmp_path), "maxthreads": 100})
