"""Streaming writers of the file system driver, and its durable-write helpers.

Writers buffer small writes up to CHUNK_SIZE and hand larger runs to a worker thread as
one ``writev``, so a stream of 16-64 KiB network chunks costs one syscall per MiB.
Consequence for readers of a file still being written (an upload's, or a temp file read
as a partial blob by `mirror.store.ingest.files`): they see what has reached the file,
which trails `size` by less than CHUNK_SIZE until the next ``flush()`` (or the commit).

A writer is used by one task at a time. `cancel` does no thread hop, so it works inside
an already cancelled scope (typically a ``finally`` after cancellation). A commit that is
cancelled while its worker thread runs still completes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import fcntl
import os
import threading
from collections.abc import Callable
from typing import Final

from anyio import CancelScope, to_thread

from mirror.store.driver import CHUNK_SIZE, FileBusy, StorageDriverError

_BUFFER: Final = CHUNK_SIZE
_NEW: Final = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
_APPEND: Final = os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC

Chunk = bytes | bytearray | memoryview


_KEEP_SIZE: Final = 1  # FALLOC_FL_KEEP_SIZE: allocate blocks, leave the file's size alone
# Refusals that mean "this file system cannot reserve", not "there is no room".
_CANNOT_RESERVE: Final = frozenset({errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL, errno.ENODEV})


def _load_fallocate() -> Callable[[int, int, int, int], int] | None:
    # Python's os has posix_fallocate only, which grows the file (partial readers take
    # its size for what was written) and which glibc emulates by writing zeros where the
    # file system cannot allocate; Linux's fallocate(2) with KEEP_SIZE does neither.
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        function = libc.fallocate
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    function.restype = ctypes.c_int
    allocate: Callable[[int, int, int, int], int] = function
    return allocate


_fallocate = _load_fallocate()
# fallocate allocates progressively: two reservations that do not both fit, run at once,
# could each take part of the room and both fail. One at a time in a process, and a
# failed one gives back what it took, so of two the first wins. (Processes sharing a disk
# can still meet in that instant; each then fails once, and the client's retry starts a
# new download.)
_RESERVING = threading.Lock()


def reserve_space(fd: int, size: int) -> None:
    """Allocate `size` bytes of disk for the file `fd` without changing its size, so its
    writes up to there cannot run out of space. Raises OSError(ENOSPC) when there is no
    room, having freed what it allocated; does nothing where the file system (or the
    platform) cannot reserve."""
    if _fallocate is None or size <= 0:
        return
    with _RESERVING:
        if _fallocate(fd, _KEEP_SIZE, 0, size) == 0:
            return
        code = ctypes.get_errno()
        if code in _CANNOT_RESERVE:
            return
        # Blocks past the end of file (KEEP_SIZE) are freed by truncating to the size.
        os.ftruncate(fd, os.fstat(fd).st_size)
    raise OSError(code, os.strerror(code))


def fsync_dir(directory: str) -> None:
    """Make the entries of `directory` (a rename, a new name) durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs(directory: str) -> list[str]:
    """Create `directory` and its missing parents; return the ones created, top down.

    Not fsynced here: that would put a journal commit (milliseconds, far more under
    write load) before the first byte of every new blob. Whoever commits a file into
    them makes them durable then, with `sync_created`.
    """
    missing: list[str] = []
    current = directory
    while not os.path.isdir(current):  # ends at the root directory at the latest
        missing.append(current)
        current = os.path.dirname(current)
    created: list[str] = []
    for path in reversed(missing):
        # Exists: a concurrent creator won (fine), or a file is in the way, and then
        # the next mkdir or the caller's open fails with NotADirectoryError.
        try:
            os.mkdir(path)
        except FileExistsError:
            continue
        created.append(path)
    return created


def sync_created(directory: str, created: list[str]) -> None:
    """Make a file's directory entries durable after its rename into `directory`: the
    directory itself, its entry in its parent (it may be new, made by anyone), and the
    entries of every directory this writer created."""
    fsync_dir(directory)
    parents = {os.path.dirname(directory)} | {os.path.dirname(path) for path in created}
    for parent in sorted(parents, key=len, reverse=True):
        fsync_dir(parent)


def unlink_quiet(os_path: str) -> None:
    """Remove a file if it is still there."""
    try:
        os.unlink(os_path)
    except FileNotFoundError:
        pass


def write_all(fd: int, parts: list[Chunk]) -> None:
    """Write `parts` in order with one ``writev``, finishing short writes."""
    total = sum(len(part) for part in parts)
    done = os.writev(fd, parts)
    if done < total:
        rest = memoryview(b"".join(parts))[done:]
        while rest:
            rest = rest[os.write(fd, rest) :]


def open_new(target: str, directory: str, flags: int = 0) -> tuple[int, list[str]]:
    """Create the file `target` exclusively, making `directory` first when missing;
    returns the descriptor and the directories created (see `make_dirs`)."""
    try:
        return os.open(target, _NEW | flags, 0o666), []
    except FileNotFoundError:
        created = make_dirs(directory)
        return os.open(target, _NEW | flags, 0o666), created


def open_temp(tmp: str, directory: str) -> tuple[int, list[str]]:
    """Create the temp file `tmp` (see `open_new`) holding its writer's ``flock``.

    The lock lasts while the descriptor is open (close it only after the rename or the
    unlink): a process that finds it free knows the writer is gone, at once, for the
    kernel drops the locks of a process that dies (`writer_alive`). Where the file system
    has no locks, the file is written unlocked (and only its age tells).
    """
    fd, created = open_new(tmp, directory)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        pass
    return fd, created


def writer_alive(os_path: str) -> bool | None:
    """Whether a writer still holds the lock of the temp file `os_path` (`open_temp`);
    None when that cannot be told (no such file, or a file system without locks)."""
    try:
        fd = os.open(os_path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return None
    finally:
        os.close(fd)
    return False


def _create_temp(tmp: str, target: str, directory: str) -> tuple[int, list[str]]:
    if os.path.isdir(target):
        raise StorageDriverError("the target is a directory")
    return open_temp(tmp, directory)


def _open_append(target: str, directory: str) -> tuple[int, int, list[str] | None]:
    """(descriptor, size at open, directories created or None when the file existed)."""
    try:
        fd, created = open_new(target, directory, os.O_APPEND)
    except FileExistsError:
        fd, created = os.open(target, _APPEND), None
    try:
        lock_exclusive(fd, "another writer is appending to it")
        # Moved away between the open and the lock: that file is not at `target` now.
        if not os.path.samestat(os.fstat(fd), os.stat(target)):
            raise FileNotFoundError
    except FileNotFoundError:
        os.close(fd)
        raise StorageDriverError("the file was moved away while it was opened") from None
    except BaseException:
        os.close(fd)
        raise
    return fd, os.fstat(fd).st_size, created


def lock_exclusive(fd: int, busy: str) -> None:
    """Take the ``flock`` that append writers hold until they close, and that a move
    of their file needs: so no append can ever land in a file after it was moved (an
    upload's data once it became a blob). Raises FileBusy(`busy`) at once when someone
    else holds it; the kernel drops it when its holder dies."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise FileBusy(busy) from None


class _BufferedWriter:
    __slots__ = ("_broken", "_buffer", "_fd", "_size")

    def __init__(self, fd: int, size: int) -> None:
        self._fd = fd
        self._size = size
        self._buffer = bytearray()
        self._broken = False

    @property
    def size(self) -> int:
        """Bytes in the file so far (buffered ones included)."""
        return self._size

    @property
    def closed(self) -> bool:
        """Committed or cancelled (also by a commit that failed)."""
        return self._fd < 0

    async def reserve(self, size: int) -> None:
        """Set aside disk space for `size` bytes in all (see `reserve_space`)."""
        self._check_open()
        await to_thread.run_sync(reserve_space, self._fd, size)

    async def write(self, data: bytes) -> None:
        """Append `data`; raises StorageDriverError once closed or after a failed write."""
        self._check_open()
        buffer = self._buffer
        if len(buffer) + len(data) < _BUFFER:
            buffer += data
            self._size += len(data)
            return
        # Unknown how much reached the file if this fails or is cancelled: only cancel is
        # allowed afterwards.
        self._broken = True
        parts: list[Chunk] = [buffer, data] if buffer else [data]
        await to_thread.run_sync(write_all, self._fd, parts)
        buffer.clear()
        self._size += len(data)
        self._broken = False

    async def flush(self) -> None:
        """Write out buffered bytes so readers of the file see them (no fsync)."""
        self._check_open()
        if self._buffer:
            self._broken = True
            parts: list[Chunk] = [self._buffer]
            await to_thread.run_sync(write_all, self._fd, parts)
            self._buffer.clear()
            self._broken = False

    def _check_open(self) -> None:
        if self._fd < 0:
            raise StorageDriverError("the writer is already committed or cancelled")
        if self._broken:
            raise StorageDriverError("an earlier write failed; the writer can only be cancelled")

    def _flush_and_sync(self, fd: int) -> None:
        if self._buffer:
            write_all(fd, [self._buffer])
            self._buffer.clear()
        os.fsync(fd)


class TempFileWriter(_BufferedWriter):
    """Writes a hidden temp file next to the target; `commit` renames it over the target.

    Holds the temp file's lock (`open_temp`) until the file is renamed or removed.
    """

    __slots__ = ("_created", "_directory", "_target", "_tmp")

    def __init__(
        self,
        fd: int,
        directory: str,
        tmp: str,
        target: str,
        *,
        created: list[str],
    ) -> None:
        super().__init__(fd, 0)
        self._created = created
        self._directory = directory
        self._tmp = tmp
        self._target = target

    @classmethod
    async def open(cls, directory: str, tmp_name: str, name: str) -> TempFileWriter:
        """Create the temp file (and missing directories) next to the target."""
        target = os.path.join(directory, name)
        tmp = os.path.join(directory, tmp_name)
        # Shielded: a cancellation must not lose the descriptor the thread opened.
        with CancelScope(shield=True):
            fd, created = await to_thread.run_sync(_create_temp, tmp, target, directory)
        return cls(fd, directory, tmp, target, created=created)

    async def commit(self) -> None:
        """Flush, fsync, rename over the target, fsync the directory."""
        self._check_open()
        await to_thread.run_sync(self._commit)

    def _commit(self) -> None:
        fd, self._fd = self._fd, -1
        try:
            self._flush_and_sync(fd)
            os.replace(self._tmp, self._target)
        except BaseException:
            unlink_quiet(self._tmp)
            raise
        finally:
            os.close(fd)  # the lock goes with it, once the file is renamed or removed
        sync_created(self._directory, self._created)

    async def cancel(self) -> None:
        """Drop the temp file; idempotent, and a no-op after commit."""
        self._abandon()

    def _abandon(self) -> None:
        fd = self._fd
        if fd >= 0:
            self._fd = -1
            unlink_quiet(self._tmp)
            os.close(fd)

    def __del__(self) -> None:
        self._abandon()


class AppendFileWriter(_BufferedWriter):
    """Appends to the target in place (creating it); `cancel` rolls back to the open size.

    Holds the file's exclusive ``flock`` from open to commit or cancel (see
    `lock_exclusive`): one append writer per file, and the file cannot be moved meanwhile.
    """

    __slots__ = ("_created", "_directory", "_initial", "_target")

    def __init__(
        self,
        fd: int,
        size: int,
        directory: str,
        target: str,
        *,
        created: list[str] | None,
    ) -> None:
        super().__init__(fd, size)
        self._initial = size
        self._directory = directory
        self._target = target
        self._created = created

    @classmethod
    async def open(cls, directory: str, name: str) -> AppendFileWriter:
        """Open (or create) the target for appending."""
        target = os.path.join(directory, name)
        with CancelScope(shield=True):
            fd, size, created = await to_thread.run_sync(_open_append, target, directory)
        return cls(fd, size, directory, target, created=created)

    async def commit(self) -> None:
        """Flush and fsync (and fsync the directory when the file is new).

        A commit that fails rolls back as `cancel` would.
        """
        self._check_open()
        await to_thread.run_sync(self._commit)

    def _commit(self) -> None:
        try:
            self._flush_and_sync(self._fd)
        except BaseException:
            self._roll_back()
            raise
        fd, self._fd = self._fd, -1
        os.close(fd)
        if self._created is not None:
            sync_created(self._directory, self._created)

    async def cancel(self) -> None:
        """Truncate back to the size at open (remove a file created by the open)."""
        self._roll_back()

    def _roll_back(self) -> None:
        fd = self._fd
        if fd < 0:
            return
        self._fd = -1
        try:
            if self._created is not None:
                unlink_quiet(self._target)
            else:
                os.ftruncate(fd, self._initial)
        finally:
            os.close(fd)

    def __del__(self) -> None:
        fd = self._fd
        if fd >= 0:
            self._fd = -1
            os.close(fd)
