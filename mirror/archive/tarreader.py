"""Reading a tar stream member by member from async code.

The standard library's `tarfile` parses (ustar, GNU and PAX headers alike); every call
that reads runs in a worker thread, one chunk at a time, and the next chunk is read
while the caller handles the last one. A seekable file skips the bodies nobody reads by
seeking, so a re-run that finds the content stored costs almost no reading; a pipe is
read through.
"""

from __future__ import annotations

import asyncio
import tarfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import IO

from anyio import to_thread

# Large reads: each is a hop to a worker thread, and so is each write and hash of it.
CHUNK = 4 * 1024 * 1024


class TarDamaged(Exception):
    """The stream is not a tar archive, or breaks off inside one."""


@dataclass(frozen=True, slots=True)
class Member:
    name: str
    size: int
    regular: bool  # a regular file (its body is the member's content)
    directory: bool


class TarReader:
    def __init__(self, fileobj: IO[bytes], *, seekable: bool) -> None:
        self._file = fileobj
        self._seekable = seekable
        self._tar: tarfile.TarFile | None = None
        self._current: tarfile.TarInfo | None = None

    async def next(self) -> Member | None:
        """The next member, or None at the end; raises TarDamaged."""
        self._current = info = await to_thread.run_sync(self._next)
        if info is None:
            return None
        return Member(info.name, info.size, info.isreg(), info.isdir())

    def _next(self) -> tarfile.TarInfo | None:
        try:
            if self._tar is None:
                self._tar = _open(self._file, self._seekable)
            info = self._tar.next()
            forget_members(self._tar)
            return info
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise TarDamaged(_reason(exc)) from None

    async def chunks(self) -> AsyncIterator[bytes]:
        """The current member's body, chunk by chunk; raises TarDamaged when cut short."""
        assert self._tar is not None and self._current is not None
        body = self._tar.extractfile(self._current)
        if body is None:
            return
        left = self._current.size
        pending: asyncio.Future[bytes] | None = None
        try:
            pending = asyncio.ensure_future(to_thread.run_sync(_read, body, min(CHUNK, left)))
            while left > 0 and pending is not None:
                chunk = await pending
                pending = None
                if not chunk:
                    raise TarDamaged(f"the archive ends inside {self._current.name}")
                left -= len(chunk)
                if left > 0:
                    pending = asyncio.ensure_future(
                        to_thread.run_sync(_read, body, min(CHUNK, left))
                    )
                yield chunk
        finally:
            if pending is not None:
                await asyncio.gather(pending, return_exceptions=True)

    async def read_all(self, limit: int) -> bytes:
        """The whole current member (at most `limit` bytes, else TarDamaged)."""
        assert self._current is not None
        if self._current.size > limit:
            raise TarDamaged(f"{self._current.name} is larger than {limit} bytes")
        return b"".join([chunk async for chunk in self.chunks()])


def _open(fileobj: IO[bytes], seekable: bool) -> tarfile.TarFile:
    # Closing the TarFile would not close `fileobj` (given, not opened here): no leak.
    if seekable:
        return tarfile.open(fileobj=fileobj, mode="r:")
    return tarfile.open(fileobj=fileobj, mode="r|")


def forget_members(tar: tarfile.TarFile) -> None:
    """Drop the members `tar` has kept (it keeps every one it read, and an archive may
    hold tens of thousands; nothing here looks back)."""
    tar.members.clear()  # type: ignore[attr-defined]  # public, but not in typeshed


def _read(body: IO[bytes], size: int) -> bytes:
    try:
        return body.read(size)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise TarDamaged(_reason(exc)) from None


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, EOFError) or "unexpected end" in text:
        return "the archive breaks off (truncated)"
    return f"not a readable tar archive ({text})"
