"""Writing a tar stream asynchronously, member by member, without holding a member whole.

Only what the archive needs: regular files and directories, headers from the standard
library's `tarfile.TarInfo` (PAX where a name or size needs it), the bodies streamed by
the caller. The sink is a file descriptor (a file, or standard output as a pipe);
blocking writes run in worker threads, and a local file is copied with `sendfile`
(no copy through Python's memory).
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import AsyncIterator, Callable

from anyio import to_thread

BLOCK = 512
SENDFILE_SLICE = 8 * 1024 * 1024
Advance = Callable[[int], None]


class TarSizeError(Exception):
    """A member's body had another length than its header announced."""


class TarWriter:
    """Writes members to the open file descriptor `fd` (left open for its owner)."""

    def __init__(self, fd: int, *, mtime: float = 0.0) -> None:
        self._fd = fd
        self._mtime = int(mtime)
        self.written = 0

    async def directory(self, name: str) -> None:
        info = self._info(name.rstrip("/") + "/", 0)
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
        await self._write(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "strict"))

    async def file(self, name: str, data: bytes) -> None:
        """A small member whose content is at hand."""
        await self._header(name, len(data))
        await self._write(data)
        await self._pad(len(data))

    async def stream(
        self,
        name: str,
        size: int,
        chunks: AsyncIterator[bytes],
        advance: Advance | None = None,
    ) -> None:
        """A member of `size` bytes read from `chunks`; raises TarSizeError (the stream
        is then unusable) when they come to another length."""
        await self._header(name, size)
        sent = 0
        async for chunk in chunks:
            sent += len(chunk)
            if sent > size:
                raise TarSizeError(f"{name}: more than the {size} bytes announced")
            await self._write(chunk)
            if advance is not None:
                advance(len(chunk))
        if sent != size:
            raise TarSizeError(f"{name}: {sent} bytes, {size} announced")
        await self._pad(size)

    async def local_file(
        self, name: str, size: int, path: str, advance: Advance | None = None
    ) -> None:
        """A member copied from the local file `path` by the kernel (`sendfile`).

        Raises OSError when the file cannot be read, TarSizeError when it is shorter.
        """
        fd = await to_thread.run_sync(os.open, path, os.O_RDONLY)
        try:
            await self._header(name, size)
            offset = 0
            while offset < size:
                count = min(SENDFILE_SLICE, size - offset)
                sent = await to_thread.run_sync(_send, self._fd, fd, offset, count)
                if sent == 0:
                    raise TarSizeError(f"{name}: {offset} bytes, {size} announced")
                offset += sent
                self.written += sent
                if advance is not None:
                    advance(sent)
            await self._pad(size)
        finally:
            os.close(fd)

    async def close(self) -> None:
        """End the archive (two zero blocks)."""
        await self._write(bytes(2 * BLOCK))

    def _info(self, name: str, size: int) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.size = size
        info.mtime = self._mtime
        info.mode = 0o644
        return info

    async def _header(self, name: str, size: int) -> None:
        await self._write(self._info(name, size).tobuf(tarfile.PAX_FORMAT, "utf-8", "strict"))

    async def _pad(self, size: int) -> None:
        rest = size % BLOCK
        if rest:
            await self._write(bytes(BLOCK - rest))

    async def _write(self, data: bytes) -> None:
        if len(data) < 64 * 1024:
            _write_all(self._fd, data)  # small: not worth a thread
        else:
            await to_thread.run_sync(_write_all, self._fd, data)
        self.written += len(data)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _send(out_fd: int, in_fd: int, offset: int, count: int) -> int:
    """Copy up to `count` bytes at `offset`; the kernel's sendfile, else read and write."""
    try:
        return os.sendfile(out_fd, in_fd, offset, count)
    except OSError as exc:
        if exc.errno not in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: no sendfile here
            raise
    data = os.pread(in_fd, count, offset)
    _write_all(out_fd, data)
    return len(data)
