"""The storage driver seam: paths and bytes, nothing about OCI.

Paths are absolute, slash-separated, and made of components matching
``[A-Za-z0-9._-]+`` (no empty, ``.`` or ``..`` components); the wrapping
`mirror.store.drivers.base.CheckedDriver` enforces this for every driver.

Drivers raise only the errors defined here; the stores above translate them into domain
errors. Optional capabilities are separate protocols checked with ``isinstance``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

CHUNK_SIZE = 1024 * 1024

# One pass over the whole path: every component is [A-Za-z0-9._-]+ but not "." or "..".
_PATH = re.compile(r"(?:/(?!\.\.?(?:/|$))[A-Za-z0-9._-]+)+")


class StorageDriverError(Exception):
    """Base of driver errors."""

    def __init__(self, message: str, *, path: str = "", driver: str = "") -> None:
        super().__init__(message)
        self.path = path
        self.driver = driver


class PathNotFound(StorageDriverError):
    """Nothing exists at the path."""


class InvalidPath(StorageDriverError):
    """The path is not acceptable to drivers."""


class InvalidOffset(StorageDriverError):
    """A read or write offset lies beyond the content."""


def check_path(path: str) -> str:
    """Return `path` if it follows the path rules, else raise InvalidPath."""
    if path == "/" or (len(path) <= 4096 and _PATH.fullmatch(path)):
        return path
    raise InvalidPath(f"invalid path {path[:200]!r}", path=path)


@dataclass(frozen=True, slots=True)
class FileInfo:
    path: str
    size: int
    mtime: float
    is_dir: bool = False


class FileWriter(Protocol):
    """A streaming writer to one path.

    Non-append writers make the whole content visible atomically at `commit`; nobody
    ever sees a partial object at the path. Append writers (for upload sessions, which
    are private to their uploader) may expose bytes as they are written; `cancel` rolls
    them back to the size at open. `cancel` is idempotent and safe after `commit`.
    """

    @property
    def size(self) -> int:
        """Bytes in the file so far, including what existed before an append."""
        ...

    async def write(self, data: bytes) -> None: ...

    async def commit(self) -> None: ...

    async def cancel(self) -> None: ...


class StorageDriver(Protocol):
    name: str

    async def get_content(self, path: str) -> bytes:
        """The whole content of a small object. Raises PathNotFound."""
        ...

    async def put_content(self, path: str, content: bytes) -> None:
        """Store `content` at `path` atomically, replacing what was there."""
        ...

    async def reader(self, path: str, offset: int = 0) -> AsyncGenerator[bytes, None]:
        """Open `path` for streaming from `offset`.

        Raises PathNotFound (at open, not at first iteration) and InvalidOffset when
        `offset` > size. The caller owns the returned generator and must ``aclose()`` it
        or run it to the end.
        """
        ...

    async def writer(self, path: str, *, append: bool = False) -> FileWriter:
        """Open a writer; with `append`, continue after the existing content."""
        ...

    async def stat(self, path: str) -> FileInfo:
        """Size and modification time of a file, or `is_dir`. Raises PathNotFound."""
        ...

    async def list(self, path: str) -> list[str]:
        """Names of the direct children of a directory, sorted. Raises PathNotFound."""
        ...

    async def move(self, src: str, dst: str) -> None:
        """Move a file, replacing `dst` atomically. Raises PathNotFound for `src`."""
        ...

    async def delete(self, path: str) -> None:
        """Delete a file or a whole directory tree. Raises PathNotFound."""
        ...


@runtime_checkable
class LocalPath(Protocol):
    """A driver whose files live on the local file system (allows zero-copy sending)."""

    def local_path(self, path: str) -> str:
        """The OS path of a driver path (which may or may not exist)."""
        ...


@runtime_checkable
class RedirectURL(Protocol):
    """A driver that can hand clients a URL to fetch content directly (object stores)."""

    async def redirect_url(self, path: str, method: str) -> str | None:
        """A URL serving `path`, or None to serve through the registry."""
        ...


@runtime_checkable
class TempFileCleanup(Protocol):
    """A driver whose writers' temp files outlive a process that dies while writing."""

    async def purge_temp_files(self, older_than: float) -> int:
        """Delete the temp files untouched for `older_than` seconds; return how many.

        A live writer keeps its temp file fresh, so with a generous `older_than` only the
        files of writers that died go. Files that vanish meanwhile are skipped.
        """
        ...
