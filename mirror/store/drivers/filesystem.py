"""The local file system driver.

Driver paths map onto ``<root><path>``; parent directories are created on demand. Paths
reach this driver already checked by `CheckedDriver`, which also turns the `OSError`s left
unhandled here into `StorageDriverError`.

Durability: every commit (``put_content``, writer ``commit``, ``move``) fsyncs the file and
then the directory holding the new name, and directories created on the way are fsynced
into their parents, so nothing committed is lost on power failure.

Blocking work runs in worker threads, except where measurement showed the thread hop
(~130 us) costs more than the work: ``stat``, opening a file, and reading objects of up
to 1 MiB, which come from the page cache in 5-60 us.
"""

from __future__ import annotations

import builtins
import logging
import os
import shutil
import stat as st
import time
from collections.abc import AsyncGenerator
from typing import Final

from anyio import to_thread

from mirror.store.driver import (
    CHUNK_SIZE,
    DriverTraits,
    FileInfo,
    FileWriter,
    InvalidOffset,
    PathNotFound,
    StorageDriverError,
)
from mirror.store.drivers.base import (
    ChunkStream,
    is_inside,
    is_temp_name,
    split_path,
    temp_name,
)
from mirror.store.drivers.fswriter import (
    AppendFileWriter,
    TempFileWriter,
    lock_exclusive,
    make_dirs,
    open_temp,
    sync_created,
    unlink_quiet,
    write_all,
    writer_alive,
)

_READ: Final = os.O_RDONLY | os.O_CLOEXEC
_SYNC_READ_LIMIT: Final = 1024 * 1024
_MISSING: Final = (FileNotFoundError, NotADirectoryError)
TEMP_LOCK_GRACE: Final = 5.0  # seconds a new temp file is left alone by the purge

log = logging.getLogger("mirror.store")


class FilesystemDriver:
    """A `StorageDriver` (with `LocalPath` and `TempFileCleanup`) storing files under the
    directory `root`."""

    name = "filesystem"
    traits = DriverTraits(append=True, directories=True)

    def __init__(self, root: str) -> None:
        self._root = os.path.abspath(root)
        os.makedirs(self._root, exist_ok=True)

    def local_path(self, path: str) -> str:
        """The OS path of a driver path (which may or may not exist)."""
        return self._root if path == "/" else self._root + path

    async def get_content(self, path: str) -> bytes:
        """The whole content of a file. Raises PathNotFound (also for directories)."""
        fd, size = self._open_file(path)
        try:
            if size <= _SYNC_READ_LIMIT:
                return _read_exact(fd, size)
            return await to_thread.run_sync(_read_exact, fd, size)
        finally:
            os.close(fd)

    async def put_content(self, path: str, content: bytes) -> None:
        """Write a temp file, fsync it, rename it over `path` and fsync the directory."""
        await to_thread.run_sync(self._put, path, content)

    def _put(self, path: str, content: bytes) -> None:
        parent, name = split_path(path)
        directory = self.local_path(parent)
        tmp = os.path.join(directory, temp_name(name))
        fd, created = open_temp(tmp, directory)
        try:
            write_all(fd, [content])
            os.fsync(fd)
            os.replace(tmp, self.local_path(path))
        except BaseException:
            unlink_quiet(tmp)
            raise
        finally:
            os.close(fd)  # holds the temp file's lock until it is renamed or removed
        sync_created(directory, created)

    async def reader(self, path: str, offset: int = 0) -> AsyncGenerator[bytes, None]:
        """Open `path` now and stream it from `offset` in chunks of up to CHUNK_SIZE.

        The stream keeps reading the file it opened even when the path is replaced or
        deleted meanwhile. It reads up to the end of file as it finds it, so a file still
        being written (an append target, a temp file) yields what is there so far.
        """
        fd, size = self._open_file(path)
        try:
            if offset < 0 or offset > size:
                raise InvalidOffset(f"offset {offset} outside {path} of size {size}", path=path)
        except BaseException:
            os.close(fd)
            raise
        return _FileChunks(fd, offset)

    async def writer(self, path: str, *, append: bool = False) -> FileWriter:
        """A buffered writer; see `TempFileWriter` and `AppendFileWriter`."""
        parent, name = split_path(path)
        directory = self.local_path(parent)
        if append:
            return await AppendFileWriter.open(directory, name)
        return await TempFileWriter.open(directory, temp_name(name), name)

    async def stat(self, path: str) -> FileInfo:
        """Size and mtime of a file, or `is_dir` (size 0). Raises PathNotFound."""
        try:
            info = os.stat(self.local_path(path))
        except _MISSING:
            raise PathNotFound(f"{path} not found", path=path) from None
        if st.S_ISDIR(info.st_mode):
            return FileInfo(path, 0, info.st_mtime, True)
        return FileInfo(path, info.st_size, info.st_mtime)

    async def list(self, path: str) -> list[str]:
        """Sorted names of the children of a directory, temp files left out."""
        return await to_thread.run_sync(self._list, path)

    def _list(self, path: str) -> builtins.list[str]:
        try:
            names = os.listdir(self.local_path(path))
        except _MISSING:
            raise PathNotFound(f"directory {path} not found", path=path) from None
        return sorted(name for name in names if not is_temp_name(name))

    async def move(self, src: str, dst: str) -> None:
        """Rename `src` over `dst` (creating its parents) and fsync the directory; refused
        while an append writer has `src` open."""
        await to_thread.run_sync(self._move, src, dst)

    def _move(self, src: str, dst: str) -> None:
        if is_inside(dst, src):
            raise StorageDriverError(f"cannot move {src} into itself", path=src)
        directory = self.local_path(split_path(dst)[0])
        source, target = self.local_path(src), self.local_path(dst)
        try:
            fd = os.open(source, _READ | os.O_NONBLOCK)
        except _MISSING:
            raise PathNotFound(f"{src} not found", path=src) from None
        try:
            lock_exclusive(fd, f"cannot move {src}: a writer is appending to it")
            created: list[str] = []
            try:
                os.replace(source, target)
            except _MISSING:
                created = make_dirs(directory)
                os.replace(source, target)
            sync_created(directory, created)
        finally:
            os.close(fd)

    async def delete(self, path: str) -> None:
        """Delete a file or a whole tree; deleting "/" empties the root. Raises PathNotFound."""
        await to_thread.run_sync(self._delete, path)

    def _delete(self, path: str) -> None:
        if path == "/":
            for name in os.listdir(self._root):
                _remove(os.path.join(self._root, name))
            return
        try:
            _remove(self.local_path(path))
        except _MISSING:
            raise PathNotFound(f"{path} not found", path=path) from None

    async def purge_temp_files(self, older_than: float) -> int:
        """Delete temp files (``.<name>.tmp-<hex>``) whose writer is gone: at once when
        its lock says so (`open_temp`: a process that died), else once untouched for
        `older_than` seconds (a file system without locks)."""
        return await to_thread.run_sync(self._purge_temp_files, older_than)

    def _purge_temp_files(self, older_than: float) -> int:
        now = time.time()
        removed = 0
        for directory, _dirs, files in os.walk(self._root):
            for name in files:
                if not is_temp_name(name):
                    continue
                path = os.path.join(directory, name)
                try:
                    mtime = os.stat(path).st_mtime
                    # A writer takes its lock right after creating the file: a file
                    # this new may still be on its way to being locked.
                    if mtime > now - TEMP_LOCK_GRACE:
                        continue
                    alive = writer_alive(path)
                    if alive is False or (alive is None and mtime < now - older_than):
                        os.unlink(path)
                        removed += 1
                except FileNotFoundError:
                    continue
        if removed:
            log.info("removed %d stale temp files under %s", removed, self._root)
        return removed

    def _open_file(self, path: str) -> tuple[int, int]:
        """An open file descriptor of the file at `path`, and its size."""
        try:
            fd = os.open(self.local_path(path), _READ)
        except _MISSING:
            raise PathNotFound(f"{path} not found", path=path) from None
        info = os.fstat(fd)
        if st.S_ISDIR(info.st_mode):
            os.close(fd)
            raise PathNotFound(f"{path} is a directory, not a file", path=path)
        return fd, info.st_size


def _remove(os_path: str) -> None:
    try:
        os.unlink(os_path)
    except IsADirectoryError:
        shutil.rmtree(os_path)


def _read_exact(fd: int, size: int) -> bytes:
    # One read in practice; more for reads over 2 GiB or a file shrinking under us.
    parts: list[bytes] = []
    while size > 0 and (data := os.read(fd, size)):
        parts.append(data)
        size -= len(data)
    return parts[0] if len(parts) == 1 else b"".join(parts)


class _FileChunks(ChunkStream):
    """Chunks of an open file, each read by one ``pread`` in a worker thread."""

    __slots__ = ("_fd", "_pos")

    def __init__(self, fd: int, offset: int) -> None:
        self._fd = fd
        self._pos = offset

    async def __anext__(self) -> bytes:
        fd = self._fd
        if fd < 0:
            raise StopAsyncIteration
        try:
            data = await to_thread.run_sync(os.pread, fd, CHUNK_SIZE, self._pos)
        except BaseException:
            self._close()
            raise
        if len(data) < CHUNK_SIZE:
            # A short read is the end of file: stop here rather than pay another hop.
            self._close()
            if not data:
                raise StopAsyncIteration
        self._pos += len(data)
        return data

    async def aclose(self) -> None:
        self._close()

    def _close(self) -> None:
        fd = self._fd
        if fd >= 0:
            self._fd = -1
            os.close(fd)

    def __del__(self) -> None:
        self._close()
