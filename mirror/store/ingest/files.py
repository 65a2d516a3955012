"""Partial blobs as the file system driver's temp files, shared by the processes of a host.

A partial is the hidden temp file that the driver's `TempFileWriter` writes next to its
target (``.data.tmp-<hex>``) and renames over it at the commit, so the on-disk layout and
the commit (fsync, rename, fsync of the directory) are the driver's own. The locator is
that temp file's driver path - what processes announced before locators existed, so old
and new processes still follow each other.

A reader holds one descriptor on the temp file: the commit renames the file, so the same
descriptor reads on to the end with no second open, whoever committed it.

A writer holds an ``flock`` on its temp file until the file is renamed or removed (the
driver's `TempFileWriter` does, see `fswriter.open_temp`), so a process that finds the lock
free knows the writer died and may remove what it left (`discard`); the kernel drops the
lock of a killed process.
"""

from __future__ import annotations

import errno
import fcntl
import os
from abc import ABC, abstractmethod
from typing import Final

from anyio import to_thread

from mirror.errors import InsufficientStorage
from mirror.store.driver import InvalidPath, LocalPath, StorageDriverError, check_path
from mirror.store.drivers.base import (
    fill_error,
    from_os_error,
    join_path,
    split_path,
    temp_name,
    temp_target,
)
from mirror.store.drivers.fswriter import TempFileWriter, unlink_quiet
from mirror.store.ingest.staging import PartialGone, PartialProgress, PartialState

_READ: Final = os.O_RDONLY | os.O_CLOEXEC
_MISSING: Final = (FileNotFoundError, NotADirectoryError)
_FULL: Final = frozenset({errno.ENOSPC, errno.EDQUOT})


class FileStaging:
    """`Staging` in the temp files of a driver with local files (see the module docstring)."""

    def __init__(self, driver: LocalPath, name: str = "filesystem") -> None:
        self._driver = driver
        self._name = name

    async def create(self, path: str) -> _FileWrite:
        """Create the temp file (and missing directories) next to `path`."""
        parent, name = split_path(check_path(path))
        tmp = temp_name(name)
        partial = join_path(parent, tmp)
        try:
            writer = await TempFileWriter.open(self._driver.local_path(parent), tmp, name)
        except StorageDriverError as exc:
            fill_error(exc, path, self._name)
            raise
        except OSError as exc:
            raise from_os_error(exc, "open", path, self._name) from exc
        return _FileWrite(writer, partial, path, self._name)

    async def open(self, path: str, locator: str) -> _FileReader:
        """A reader of the temp file `locator` of `path`; PartialGone when there is none."""
        partial = self._partial(path, locator)
        try:
            fd = os.open(partial, _READ)
        except _MISSING:
            raise PartialGone(f"no partial {locator}") from None
        return _FileReader(fd, partial, self._driver.local_path(path))

    async def discard(self, path: str, locator: str) -> bool:
        """Remove the temp file `locator` of `path` if no writer holds its lock."""
        try:
            partial = self._partial(path, locator)
            fd = os.open(partial, _READ)
        except (PartialGone, *_MISSING):
            return False
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # its writer lives (or this file system has no locks)
                return False
            unlink_quiet(partial)
            return True
        finally:
            os.close(fd)

    def _partial(self, path: str, locator: str) -> str:
        """The OS path of the temp file `locator` of `path`; PartialGone for others."""
        try:
            parent, name = split_path(check_path(locator))
        except (InvalidPath, StorageDriverError):
            raise PartialGone(f"not a partial: {locator[:200]!r}") from None
        if join_path(parent, temp_target(name) or "") != path:
            raise PartialGone(f"{locator!r} is not a partial of {path}")
        return self._driver.local_path(locator)


class _FileWrite:
    """A `TempFileWriter` (which holds the temp file's lock) seen as a `StagedWrite`, its
    OSErrors as driver errors."""

    __slots__ = ("_driver", "_inner", "_locator", "_path")

    def __init__(self, inner: TempFileWriter, locator: str, path: str, driver: str) -> None:
        self._inner = inner
        self._locator = locator
        self._path = path
        self._driver = driver

    @property
    def locator(self) -> str:
        return self._locator

    @property
    def size(self) -> int:
        return self._inner.size

    async def reserve(self, size: int) -> None:
        """Allocate the temp file's blocks up front (fallocate, keeping its size)."""
        try:
            await self._inner.reserve(size)
        except OSError as exc:
            if exc.errno in _FULL:
                raise InsufficientStorage(
                    f"not enough storage space to store {self._path} ({size} bytes)"
                ) from exc
            raise from_os_error(exc, "reserve", self._path, self._driver) from exc

    async def write(self, data: bytes) -> None:
        try:
            await self._inner.write(data)
        except OSError as exc:
            raise from_os_error(exc, "write", self._path, self._driver) from exc

    async def flush(self) -> None:
        try:
            await self._inner.flush()
        except OSError as exc:
            raise from_os_error(exc, "write", self._path, self._driver) from exc

    async def commit(self) -> None:
        try:
            await self._inner.commit()
        except StorageDriverError as exc:
            fill_error(exc, self._path, self._driver)
            raise
        except OSError as exc:
            raise from_os_error(exc, "commit", self._path, self._driver) from exc

    async def cancel(self) -> None:
        try:
            await self._inner.cancel()
        except OSError as exc:
            raise from_os_error(exc, "cancel", self._path, self._driver) from exc


def path_exists(os_path: str) -> bool:
    try:
        os.stat(os_path)
    except _MISSING:
        return False
    return True


def _pread_pieces(fd: int, offset: int, size: int, piece: int) -> list[bytes]:
    """Preads of up to `piece` bytes from `offset` on, up to `size` bytes or a short read."""
    pieces: list[bytes] = []
    end = offset + size
    while offset < end:
        data = os.pread(fd, min(piece, end - offset), offset)
        if data:
            pieces.append(data)
        if len(data) < min(piece, end - offset):
            break
        offset += len(data)
    return pieces


class FdReader(ABC):
    """Reads one local file through one descriptor, which reads on across a rename or an
    unlink. `partial` is the path that exists while the file is still being written;
    once it is gone, `settled` says whether the content was committed."""

    __slots__ = ("_fd", "_partial")

    def __init__(self, fd: int, partial: str) -> None:
        self._fd = fd
        self._partial = partial

    async def read(self, offset: int, size: int, piece: int) -> list[bytes]:
        if self._fd < 0:
            raise StorageDriverError("the partial reader is closed")
        return await to_thread.run_sync(_pread_pieces, self._fd, offset, size, piece)

    async def progress(self) -> PartialProgress:
        if self._fd < 0:
            raise StorageDriverError("the partial reader is closed")
        # A stat or two, from the page cache: cheaper than a thread hop.
        available = os.fstat(self._fd).st_size
        if path_exists(self._partial):
            return PartialProgress(available, PartialState.WRITING)
        state = await self.settled()
        return PartialProgress(os.fstat(self._fd).st_size, state)

    @abstractmethod
    async def settled(self) -> PartialState:
        """Whether the content was committed, once the partial path is gone."""

    async def aclose(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    def __del__(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)


class _FileReader(FdReader):
    """Reads one temp file through one descriptor, before and after its rename."""

    __slots__ = ("_target",)

    def __init__(self, fd: int, partial: str, target: str) -> None:
        super().__init__(fd, partial)
        self._target = target

    async def settled(self) -> PartialState:
        # The rename is atomic: no temp file and a target means it was committed.
        return PartialState.COMMITTED if path_exists(self._target) else PartialState.GONE
