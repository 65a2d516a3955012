"""The shared driver suite against the in-memory driver, plus CheckedDriver's own checks."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from mirror.store.driver import (
    DriverTraits,
    FileInfo,
    FileWriter,
    InvalidPath,
    LocalPath,
    OperationUnsupported,
    RedirectURL,
    StorageDriver,
    StorageDriverError,
    StorageFull,
    TempFileCleanup,
)
from mirror.store.drivers import create_driver
from mirror.store.drivers.base import CheckedDriver, ChunkStream
from mirror.store.drivers.filesystem import FilesystemDriver
from mirror.store.drivers.inmemory import InMemoryDriver
from tests.driver_suite import DriverSuite
from tests.driver_suite_traits import AppendSuite, DirectorySuite

pytestmark = pytest.mark.anyio


class TestInMemoryDriver(DriverSuite, DirectorySuite, AppendSuite):
    @pytest.fixture
    def driver(self) -> StorageDriver:
        return create_driver("inmemory", {})


def test_factory_takes_no_parameters() -> None:
    driver = create_driver("inmemory", {})
    assert driver.name == "inmemory"
    assert not isinstance(driver, LocalPath | RedirectURL | TempFileCleanup)
    with pytest.raises(ValueError, match=r"'inmemory' does not take parameter.*accepts: none"):
        create_driver("inmemory", {"rootdirectory": "/tmp"})


# -- CheckedDriver with drivers that have other capabilities or misbehave --------------------


class RedirectingMemory(InMemoryDriver):
    async def redirect_url(self, path: str, method: str) -> str | None:
        if method != "GET":
            return None
        if path == "/broken":
            raise OSError(errno.EHOSTUNREACH, "No route to host")
        return f"http://127.0.0.1:9{path}"


class RedirectingFilesystem(FilesystemDriver):
    async def redirect_url(self, path: str, method: str) -> str | None:
        return None


class PurgingMemory(InMemoryDriver):
    async def purge_temp_files(self, older_than: float) -> int:
        if older_than < 0:
            raise OSError(errno.EIO, "Input/output error")
        return 7


async def test_wrapper_capabilities_match_the_inner_driver(tmp_path: Path) -> None:
    plain = CheckedDriver(InMemoryDriver())
    assert not isinstance(plain, LocalPath | RedirectURL | TempFileCleanup)
    redirecting = CheckedDriver(RedirectingMemory())
    assert isinstance(redirecting, RedirectURL)
    assert not isinstance(redirecting, LocalPath | TempFileCleanup)
    assert await redirecting.redirect_url("/a/b", "GET") == "http://127.0.0.1:9/a/b"
    assert await redirecting.redirect_url("/a/b", "HEAD") is None
    with pytest.raises(InvalidPath):
        await redirecting.redirect_url("/a/../b", "GET")
    with pytest.raises(StorageDriverError) as info:
        await redirecting.redirect_url("/broken", "GET")
    assert isinstance(info.value.__cause__, OSError)
    assert (info.value.path, info.value.driver) == ("/broken", "inmemory")
    purging = CheckedDriver(PurgingMemory())
    assert isinstance(purging, TempFileCleanup)
    assert not isinstance(purging, LocalPath | RedirectURL)
    assert await purging.purge_temp_files(60) == 7
    with pytest.raises(StorageDriverError) as info:
        await purging.purge_temp_files(-1)
    assert isinstance(info.value.__cause__, OSError)
    assert (info.value.path, info.value.driver) == ("/", "inmemory")
    both = CheckedDriver(RedirectingFilesystem(str(tmp_path)))
    assert isinstance(both, LocalPath)
    assert isinstance(both, RedirectURL)
    assert isinstance(both, TempFileCleanup)
    assert both.local_path("/x") == str(tmp_path / "x")
    assert await both.redirect_url("/x", "GET") is None
    assert await both.purge_temp_files(60) == 0
    local = CheckedDriver(FilesystemDriver(str(tmp_path)))
    assert isinstance(local, LocalPath)
    assert isinstance(local, TempFileCleanup)
    assert not isinstance(local, RedirectURL)
    for wrapper in (plain, redirecting, purging, both, local):
        assert isinstance(wrapper, CheckedDriver)


class FailingStream(ChunkStream):
    def __init__(self, error: Exception) -> None:
        self.error = error
        self.sent = False

    async def __anext__(self) -> bytes:
        if not self.sent:
            self.sent = True
            return b"first"
        raise self.error

    async def aclose(self) -> None:
        raise OSError(errno.EIO, "Input/output error")


class FailingWriter:
    size = 0

    async def write(self, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    async def commit(self) -> None:
        raise OSError(errno.EIO, "Input/output error")

    async def cancel(self) -> None:
        raise StorageDriverError("cancel failed")


class FaultyMemory(InMemoryDriver):
    """Raises what a broken disk or a sloppy driver would."""

    async def stat(self, path: str) -> FileInfo:
        raise OSError(errno.EIO, "Input/output error")

    async def reader(self, path: str, offset: int = 0) -> ChunkStream:
        if path == "/named":
            raise StorageDriverError("gone", path="/elsewhere", driver="backend")
        if path == "/sloppy":
            return FailingStream(StorageDriverError("lost the object"))
        return FailingStream(OSError(errno.EIO, "Input/output error"))

    async def writer(self, path: str, *, append: bool = False) -> FileWriter:
        return FailingWriter()


async def test_wrapper_turns_os_errors_into_driver_errors() -> None:
    driver = CheckedDriver(FaultyMemory())
    with pytest.raises(StorageDriverError) as info:
        await driver.stat("/s")
    assert not isinstance(info.value, OSError)
    assert str(info.value) == "inmemory: stat /s failed: Input/output error"

    stream = await driver.reader("/r")
    assert await stream.__anext__() == b"first"
    with pytest.raises(StorageDriverError) as info:
        await stream.__anext__()
    assert (info.value.path, info.value.driver) == ("/r", "inmemory")
    assert isinstance(info.value.__cause__, OSError)
    with pytest.raises(StorageDriverError, match="close /r failed"):
        await stream.aclose()

    sloppy = await driver.reader("/sloppy")
    await sloppy.__anext__()
    with pytest.raises(StorageDriverError, match="lost the object") as info:
        await sloppy.__anext__()
    assert (info.value.path, info.value.driver) == ("/sloppy", "inmemory")

    with pytest.raises(StorageDriverError) as info:
        await driver.reader("/named")
    assert (info.value.path, info.value.driver) == ("/elsewhere", "backend")

    writer = await driver.writer("/w")
    assert writer.size == 0
    for call, message in (
        (writer.write(b"x"), "write /w failed: No space left on device"),
        (writer.commit(), "commit /w failed"),
        (writer.cancel(), "cancel failed"),
    ):
        with pytest.raises(StorageDriverError, match=message) as info:
            await call
        assert not isinstance(info.value, OSError)
        assert (info.value.path, info.value.driver) == ("/w", "inmemory")


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
async def test_a_full_disk_is_its_own_driver_error(code: int) -> None:
    class Full(InMemoryDriver):
        async def put_content(self, path: str, content: bytes) -> None:
            raise OSError(code, os.strerror(code))

    with pytest.raises(StorageFull) as info:
        await CheckedDriver(Full()).put_content("/p", b"x")
    assert (info.value.path, info.value.driver) == ("/p", "inmemory")
    writer = await CheckedDriver(FaultyMemory()).writer("/w")
    with pytest.raises(StorageFull):
        await writer.write(b"x")


class NoAppendMemory(InMemoryDriver):
    traits = DriverTraits(append=False, directories=True)


async def test_wrapper_declares_the_inner_traits_and_refuses_append() -> None:
    assert create_driver("inmemory", {}).traits == DriverTraits(append=True, directories=True)
    driver = CheckedDriver(NoAppendMemory())
    assert driver.traits == DriverTraits(append=False, directories=True)
    with pytest.raises(OperationUnsupported) as info:
        await driver.writer("/x", append=True)
    assert (info.value.path, info.value.driver) == ("/x", "inmemory")
    with pytest.raises(InvalidPath):
        await driver.writer("bad", append=True)
    assert await driver.list("/") == []
    writer = await driver.writer("/x")
    await writer.commit()
    assert await driver.list("/") == ["x"]
