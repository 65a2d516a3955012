"""Partial blobs of an object store, spooled to a local file while they are written.

An object store cannot read back a multipart upload before it completes, so the bytes of
a download are written twice: through the driver's own writer (its commit is the atomic
publication) and into a spool file in a local directory (`cache.directory/spool`), which
readers of any process of this host open by the locator (``spool:<token>``) and read at
once, for blobs of any size: memory holds no more than the driver writer's parts. The
writer holds an ``flock`` on its spool file, so a process that finds the lock free knows
the writer died (`discard`); the spool file is removed at the commit or the cancel (open
readers read on through their descriptor), so the disk holds each blob only while it is
being downloaded.

Another host cannot open the spool file. With `cluster.advertise` (`Peers`), the locator
also names the replica that writes it (``spool:<token>@<its URL>``), and a follower on
another host reads the spool file from that replica over its internal route
(`remote.RemoteReader`); without, or when the holder cannot be reached, the locator is
unknown there (PartialGone) and its followers wait for the commit, still without a
second upstream download.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import secrets
import time
from typing import Final

from anyio import to_thread

from mirror.store.driver import FileWriter, PathNotFound, StorageDriver, StorageDriverError
from mirror.store.ingest import peerwire
from mirror.store.ingest.files import FdReader
from mirror.store.ingest.remote import Peers
from mirror.store.ingest.staging import PartialGone, PartialReader, PartialState

_PREFIX: Final = "spool:"
_TOKEN: Final = re.compile(r"[0-9a-f]{32}")
_SUFFIX: Final = peerwire.SUFFIX
THREAD_WRITE_BYTES: Final = 256 * 1024


class SpoolStaging:
    """`Staging` for drivers without local files (see the module docstring)."""

    def __init__(self, driver: StorageDriver, directory: str, peers: Peers | None = None) -> None:
        self._driver = driver
        self._directory = directory
        self._peers = peers

    def _name(self, path: str, locator: str) -> tuple[str, str | None]:
        """The spool file's name of `locator`, named after `path` too (a locator opens
        only the partial of the object it was handed out for), and the URL of the replica
        that writes it, if the locator names one."""
        token, _, holder = locator.removeprefix(_PREFIX).partition("@")
        if not locator.startswith(_PREFIX) or not _TOKEN.fullmatch(token):
            raise PartialGone(f"not a spooled partial: {locator[:200]!r}")
        named = hashlib.sha256(path.encode()).hexdigest()[:32]
        return f"{named}-{token}", holder or None

    def _file(self, path: str, locator: str) -> str:
        return os.path.join(self._directory, self._name(path, locator)[0] + _SUFFIX)

    async def create(self, path: str) -> _SpoolWrite:
        os.makedirs(self._directory, exist_ok=True)
        locator = _PREFIX + secrets.token_hex(16)
        if self._peers is not None:
            locator += "@" + self._peers.cluster.advertise
        spool = self._file(path, locator)
        fd = os.open(spool, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            writer = await self._driver.writer(path)
        except BaseException:
            os.close(fd)
            _unlink(spool)
            raise
        return _SpoolWrite(writer, fd, spool, locator)

    async def open(self, path: str, locator: str) -> PartialReader:
        """The spool file on this host, else (with `Peers`) the one of the replica the
        locator names."""
        name, holder = self._name(path, locator)
        spool = os.path.join(self._directory, name + _SUFFIX)
        try:
            fd = os.open(spool, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            peers = self._peers
            if peers is None or holder is None or not peers.reaches(holder):
                raise PartialGone(f"no partial {locator[:200]} on this host") from None
            return await peers.open(holder, name, self._driver, path)
        return _SpoolReader(fd, spool, self._driver, path)

    async def serve(self, query: str, auth: str | None) -> peerwire.PeerAnswer:
        """This host's answer to another replica's request for a partial (`peerwire`)."""
        if self._peers is None:
            return peerwire.NOT_SERVED
        return await peerwire.answer(self._directory, self._peers.cluster.secret, query, auth)

    async def discard(self, path: str, locator: str) -> bool:
        try:
            spool = self._file(path, locator)
            fd = os.open(spool, os.O_RDONLY | os.O_CLOEXEC)
        except (PartialGone, FileNotFoundError):
            return False
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # its writer lives
                return False
            _unlink(spool)
            return True
        finally:
            os.close(fd)

    def purge(self, older_than: float) -> int:
        """Remove the spool files of writers that died, untouched for `older_than` s."""
        removed = 0
        try:
            names = os.listdir(self._directory)
        except FileNotFoundError:
            return 0
        cutoff = time.time() - older_than
        for name in names:
            if not name.endswith(_SUFFIX):
                continue
            spool = os.path.join(self._directory, name)
            try:
                fd = os.open(spool, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            try:
                if os.fstat(fd).st_mtime > cutoff:
                    continue
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    continue
                _unlink(spool)
                removed += 1
            finally:
                os.close(fd)
        return removed


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


class _SpoolWrite:
    __slots__ = ("_fd", "_locator", "_size", "_spool", "_state", "_writer")

    def __init__(self, writer: FileWriter, fd: int, spool: str, locator: str) -> None:
        self._writer = writer
        self._fd = fd
        self._spool = spool
        self._locator = locator
        self._size = 0
        self._state = PartialState.WRITING

    @property
    def locator(self) -> str:
        return self._locator

    @property
    def size(self) -> int:
        return self._size

    async def reserve(self, size: int) -> None:
        """Nothing to reserve: an object store has no space to run out of here."""

    async def write(self, data: bytes) -> None:
        if self._state is not PartialState.WRITING:
            raise StorageDriverError("the writer is already committed or cancelled")
        await self._writer.write(data)
        if len(data) < THREAD_WRITE_BYTES:
            _write_all(self._fd, data)
        else:
            await to_thread.run_sync(_write_all, self._fd, data)
        self._size += len(data)

    async def flush(self) -> None:
        """Nothing to do: the spool file has every byte written (no buffer here)."""
        if self._state is not PartialState.WRITING:
            raise StorageDriverError("the writer is already committed or cancelled")

    async def commit(self) -> None:
        await self._writer.commit()
        self._state = PartialState.COMMITTED
        self._close()

    async def cancel(self) -> None:
        if self._state is PartialState.WRITING:
            self._state = PartialState.GONE
            self._close()
        await self._writer.cancel()

    def _close(self) -> None:
        # Removed first, then unlocked: a reader's progress sees no spool file and asks
        # the driver whether the blob is there.
        _unlink(self._spool)
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    def __del__(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class _SpoolReader(FdReader):
    """Reads a spool file while it is written; once it is removed, the driver says
    whether the blob was committed."""

    __slots__ = ("_driver", "_path")

    def __init__(self, fd: int, spool: str, driver: StorageDriver, path: str) -> None:
        super().__init__(fd, spool)
        self._driver = driver
        self._path = path

    async def settled(self) -> PartialState:
        try:
            await self._driver.stat(self._path)
        except PathNotFound:
            return PartialState.GONE
        return PartialState.COMMITTED
