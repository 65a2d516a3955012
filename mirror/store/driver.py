"""The storage driver seam: paths and bytes, nothing about OCI.

Paths are absolute, slash-separated, and made of components matching
``[A-Za-z0-9._-]+`` (no empty, ``.`` or ``..`` components); the wrapping
`mirror.store.drivers.base.CheckedDriver` enforces this for every driver.

Drivers raise only the errors defined here; the stores above translate them into domain
errors. What a driver can do beyond the common contract is declared: optional methods are
separate protocols checked with ``isinstance`` (`LocalPath`, `RedirectURL`), differences in
behaviour are flags on `DriverTraits` (append writers, real directories).
"""

from __future__ import annotations

import functools
import re
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Protocol, cast, runtime_checkable

from mirror.errors import Unavailable

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


class StorageFull(StorageDriverError):
    """No space is left (or the quota is used up) where the driver writes."""


class FileBusy(StorageDriverError):
    """Another writer holds the file: an append writer, which also keeps it from moving."""


class InvalidOffset(StorageDriverError):
    """A read or write offset lies beyond the content."""


class OperationUnsupported(StorageDriverError):
    """The driver cannot do this at all (see `DriverTraits`); asking again will not help."""


class StorageUnavailable(StorageDriverError, Unavailable):
    """The storage service could not be used now: the connection was refused or reset, a
    request timed out, or the service answered 5xx or throttled (429, 503 SlowDown), after
    the driver's bounded retries.

    Transient by nature: the same call may succeed later. It is also the domain's
    `Unavailable`, so whichever store path it crosses (a read, a write, a listing, the
    middle of a streamed body) the client is told 503 UNAVAILABLE with a plain message,
    never 500, and no store method needs a translation of its own. The driver's words
    (`str(exc)`, which name the service and the request) go to logs, not to clients.
    Nothing partial was made visible by the failed call.
    """

    def __init__(self, message: str, *, path: str = "", driver: str = "") -> None:
        super().__init__(message, path=path, driver=driver)
        self.message = "the registry's storage is not available now; retry later"
        self.detail = None
        self.retry_after = None


def check_path(path: str) -> str:
    """Return `path` if it follows the path rules, else raise InvalidPath."""
    if path == "/" or (len(path) <= 4096 and _PATH.fullmatch(path)):
        return path
    raise InvalidPath(f"invalid path {path[:200]!r}", path=path)


@dataclass(frozen=True, slots=True)
class DriverTraits:
    """Behaviour a driver declares, so callers (and the shared driver suite) can rely on it.

    `append`: ``writer(path, append=True)`` continues an existing file in place. Object
    stores cannot append to an object without rewriting it; their drivers declare False,
    and `CheckedDriver` then refuses append writers with `OperationUnsupported`.

    `directories`: directories are entries of their own, as on a file system. A writer
    creates its parents at open, an emptied directory still lists as ``[]``, a name is a
    file or a directory but never both (writes over the other kind fail), and `move` moves
    whole trees. Without it (object stores) a directory is only a key prefix: it exists
    exactly while some object lies below it (`list` and `stat` of it raise PathNotFound
    otherwise), writes do not look for a file or directory of the same name, and `move`
    moves single files (a directory raises `OperationUnsupported`).
    """

    append: bool
    directories: bool


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
    traits: DriverTraits

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
        """Open a writer; with `append`, continue after the existing content.

        A file has at most one append writer at a time (FileBusy for a second),
        and `move` refuses it until that writer is committed or cancelled, so appended
        bytes can never reach the place a file was moved to. Append writers need
        ``traits.append``; otherwise OperationUnsupported.
        """
        ...

    async def stat(self, path: str) -> FileInfo:
        """Size and modification time of a file, or `is_dir`. Raises PathNotFound.

        Drivers without ``traits.directories`` keep no time for a directory and report the
        time of the call, so mtime-keyed caches never trust a listing of one.
        """
        ...

    async def list(self, path: str) -> list[str]:
        """Names of the direct children of a directory, sorted. Raises PathNotFound."""
        ...

    async def move(self, src: str, dst: str) -> None:
        """Move a file, replacing `dst` atomically. Raises PathNotFound for `src`, and
        FileBusy while an append writer has `src` open.

        Readers of `dst` see the old or the new content, never a mix. On object stores the
        move is a server-side copy then a delete: a crash in between leaves both names.
        """
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
        """A URL serving `path` to an HTTP `method` (GET, HEAD), or None to serve through
        the registry. The URL is signed and expires after the driver's configured lifetime;
        it does not check that `path` exists."""
        ...


@runtime_checkable
class FileStat(Protocol):
    """A driver for which asking about a file is cheaper than `stat`, which must also
    recognise a directory (an object store: `stat` of a missing object also lists the
    prefix, to tell a directory from nothing; `stat_file` is the one HEAD)."""

    async def stat_file(self, path: str) -> FileInfo:
        """Size and modification time of the file at `path`. Raises PathNotFound when
        there is none (a directory there counts as none)."""
        ...


@functools.cache
def _has_stat_file(kind: type) -> bool:
    """Whether a driver class has `stat_file`, asked once per class: a runtime-checkable
    protocol's `isinstance` costs microseconds, and this is on every manifest GET."""
    return issubclass(kind, FileStat)


async def stat_file(driver: StorageDriver, path: str) -> FileInfo:
    """The file at `path` (`FileStat.stat_file` where the driver has it, else `stat`).
    Raises PathNotFound when there is none, also when `path` is a directory."""
    if _has_stat_file(type(driver)):
        return await cast(FileStat, driver).stat_file(path)
    info = await driver.stat(path)
    if info.is_dir:
        raise PathNotFound(f"{path} is a directory, not a file", path=path)
    return info


@runtime_checkable
class TempFileCleanup(Protocol):
    """A driver whose writers' temp files outlive a process that dies while writing."""

    async def purge_temp_files(self, older_than: float) -> int:
        """Delete the temp files untouched for `older_than` seconds; return how many.

        A live writer keeps its temp file fresh, so with a generous `older_than` only the
        files of writers that died go. Files that vanish meanwhile are skipped.
        """
        ...
