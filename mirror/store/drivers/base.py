"""What every driver shares: the checking decorator, chunk streams and temp-file names.

`CheckedDriver` wraps each driver the registry hands out. It enforces the path rules of
`mirror.store.driver` before the inner driver sees a path, fills `path` and `driver` on the
errors the inner driver raises, and turns stray `OSError`s into `StorageDriverError` (a
full disk or quota into `StorageFull`), so the stores above only ever handle the driver
errors. It sits on every request's hot path, so it adds one path check and one ``try``
per call and nothing per chunk beyond one await.
"""

from __future__ import annotations

import errno
import functools
import re
import uuid
from abc import abstractmethod
from collections.abc import AsyncGenerator, Awaitable
from types import TracebackType
from typing import TypeVar, cast

from mirror.store.driver import (
    DriverTraits,
    FileInfo,
    FileStat,
    FileWriter,
    InvalidPath,
    LocalPath,
    OperationUnsupported,
    RedirectURL,
    StorageDriver,
    StorageDriverError,
    StorageFull,
    TempFileCleanup,
    check_path,
)

T = TypeVar("T")

# A writer's hidden temp file: ".<name>.tmp-<32 hex>" (a valid path component itself, so
# its driver path can name a partial blob, `mirror.store.ingest.files`); `list` never
# shows names of this shape.
_TEMP_NAME = re.compile(r"^\..+\.tmp-[0-9a-f]{32}$")


def temp_name(name: str) -> str:
    """A fresh hidden temp-file name for a file called `name`."""
    return f".{name}.tmp-{uuid.uuid4().hex}"


def is_temp_name(name: str) -> bool:
    """True for names made by `temp_name`."""
    return name.startswith(".") and _TEMP_NAME.match(name) is not None


def temp_target(name: str) -> str | None:
    """The name a temp file made by `temp_name(target)` stands in for; None for others."""
    return name[1:-37] if is_temp_name(name) else None


def split_path(path: str) -> tuple[str, str]:
    """(parent, name) of a checked file path; the root cannot be a file."""
    if path == "/":
        raise StorageDriverError("the root is a directory, not a file", path=path)
    parent, _, name = path.rpartition("/")
    return parent or "/", name


def join_path(parent: str, name: str) -> str:
    """The driver path of `name` inside the directory `parent`."""
    return f"/{name}" if parent == "/" else f"{parent}/{name}"


def is_inside(path: str, ancestor: str) -> bool:
    """True when `path` lies strictly below `ancestor`."""
    return ancestor == "/" or path.startswith(ancestor + "/")


class ChunkStream(AsyncGenerator[bytes, None]):
    """An async generator object over chunks that frees its resource in `aclose`.

    A plain ``async def`` generator does not run its ``finally`` when it is closed before
    the first iteration, which would leak the file opened by ``reader()``; subclasses of
    this class release in `aclose` whatever state they are in. Exhaustion releases too.
    """

    __slots__ = ()

    def __aiter__(self) -> ChunkStream:
        return self

    @abstractmethod
    async def __anext__(self) -> bytes:
        """The next chunk (never empty); StopAsyncIteration at the end."""

    @abstractmethod
    async def aclose(self) -> None:
        """Release the stream; idempotent, later iteration ends at once."""

    async def asend(self, value: None) -> bytes:
        return await self.__anext__()

    async def athrow(
        self,
        typ: type[BaseException] | BaseException,
        val: object = None,
        tb: TracebackType | None = None,
    ) -> bytes:
        await self.aclose()
        if isinstance(typ, BaseException):
            raise typ
        if isinstance(val, BaseException):
            raise val
        raise typ() if val is None else typ(val)


def fill_error(exc: StorageDriverError, path: str, driver: str) -> None:
    """Name `path` and `driver` in `exc` unless the inner driver did."""
    if not exc.path:
        exc.path = path
    if not exc.driver:
        exc.driver = driver


_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


def from_os_error(exc: OSError, op: str, path: str, driver: str) -> StorageDriverError:
    """The driver error for an `OSError` of `op` on `path` (raise it ``from exc``):
    `StorageFull` for a full disk or an exhausted quota."""
    reason = exc.strerror or exc.__class__.__name__
    kind = StorageFull if exc.errno in _FULL else StorageDriverError
    return kind(f"{driver}: {op} {path} failed: {reason}", path=path, driver=driver)


class _CheckedStream(ChunkStream):
    __slots__ = ("_driver", "_inner", "_path")

    def __init__(self, inner: AsyncGenerator[bytes, None], path: str, driver: str) -> None:
        self._inner = inner
        self._path = path
        self._driver = driver

    async def __anext__(self) -> bytes:
        try:
            return await self._inner.__anext__()
        except StorageDriverError as exc:
            fill_error(exc, self._path, self._driver)
            raise
        except OSError as exc:
            raise from_os_error(exc, "read", self._path, self._driver) from exc

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        except OSError as exc:
            raise from_os_error(exc, "close", self._path, self._driver) from exc


class _CheckedWriter:
    __slots__ = ("_driver", "_inner", "_path")

    def __init__(self, inner: FileWriter, path: str, driver: str) -> None:
        self._inner = inner
        self._path = path
        self._driver = driver

    @property
    def size(self) -> int:
        return self._inner.size

    async def write(self, data: bytes) -> None:
        try:
            await self._inner.write(data)
        except StorageDriverError as exc:
            fill_error(exc, self._path, self._driver)
            raise
        except OSError as exc:
            raise from_os_error(exc, "write", self._path, self._driver) from exc

    async def commit(self) -> None:
        await self._guard("commit", self._inner.commit())

    async def cancel(self) -> None:
        await self._guard("cancel", self._inner.cancel())

    async def _guard(self, op: str, call: Awaitable[None]) -> None:
        try:
            await call
        except StorageDriverError as exc:
            fill_error(exc, self._path, self._driver)
            raise
        except OSError as exc:
            raise from_os_error(exc, op, self._path, self._driver) from exc


class CheckedDriver:
    """The decorator around every driver (see the module docstring).

    ``CheckedDriver(inner)`` returns an instance of a subclass that has `local_path`,
    `redirect_url`, `purge_temp_files` and `stat_file` exactly when `inner` has them, so
    ``isinstance(d, LocalPath)`` tells the truth about the wrapper.
    """

    __slots__ = ("_inner", "name", "traits")

    def __new__(cls, inner: StorageDriver) -> CheckedDriver:
        return object.__new__(_variant(tuple(isinstance(inner, p) for p, _ in _CAPABILITIES)))

    def __init__(self, inner: StorageDriver) -> None:
        self._inner = inner
        self.name = inner.name
        self.traits: DriverTraits = inner.traits

    def _check(self, path: str) -> str:
        try:
            return check_path(path)
        except InvalidPath as exc:
            fill_error(exc, path, self.name)
            raise

    async def _guard(self, op: str, path: str, call: Awaitable[T]) -> T:
        try:
            return await call
        except StorageDriverError as exc:
            fill_error(exc, path, self.name)
            raise
        except OSError as exc:
            raise from_os_error(exc, op, path, self.name) from exc

    async def get_content(self, path: str) -> bytes:
        """The whole content of a small object. Raises PathNotFound."""
        return await self._guard("get", path, self._inner.get_content(self._check(path)))

    async def put_content(self, path: str, content: bytes) -> None:
        """Store `content` at `path` atomically, replacing what was there."""
        await self._guard("put", path, self._inner.put_content(self._check(path), content))

    async def reader(self, path: str, offset: int = 0) -> AsyncGenerator[bytes, None]:
        """Open `path` for streaming from `offset` (PathNotFound, InvalidOffset at open)."""
        inner = await self._guard("open", path, self._inner.reader(self._check(path), offset))
        return _CheckedStream(inner, path, self.name)

    async def writer(self, path: str, *, append: bool = False) -> FileWriter:
        """Open a writer; with `append`, continue after the existing content."""
        checked = self._check(path)
        if append and not self.traits.append:
            raise OperationUnsupported(
                f"{self.name}: append writers are not supported (objects cannot grow in place)",
                path=path,
                driver=self.name,
            )
        inner = await self._guard("open", path, self._inner.writer(checked, append=append))
        return _CheckedWriter(inner, path, self.name)

    async def stat(self, path: str) -> FileInfo:
        """Size and modification time of a file, or `is_dir`. Raises PathNotFound."""
        return await self._guard("stat", path, self._inner.stat(self._check(path)))

    async def list(self, path: str) -> list[str]:
        """Names of the direct children of a directory, sorted. Raises PathNotFound."""
        return await self._guard("list", path, self._inner.list(self._check(path)))

    async def move(self, src: str, dst: str) -> None:
        """Move a file, replacing `dst` atomically. Raises PathNotFound for `src`."""
        self._check(dst)
        await self._guard("move", src, self._inner.move(self._check(src), dst))

    async def delete(self, path: str) -> None:
        """Delete a file or a whole directory tree. Raises PathNotFound."""
        await self._guard("delete", path, self._inner.delete(self._check(path)))


class _WithLocalPath(CheckedDriver):
    __slots__ = ()

    def local_path(self, path: str) -> str:
        """The OS path of a driver path (which may or may not exist)."""
        return cast(LocalPath, self._inner).local_path(self._check(path))


class _WithRedirectURL(CheckedDriver):
    __slots__ = ()

    async def redirect_url(self, path: str, method: str) -> str | None:
        """A URL serving `path`, or None to serve through the registry."""
        inner = cast(RedirectURL, self._inner)
        return await self._guard("redirect", path, inner.redirect_url(self._check(path), method))


class _WithFileStat(CheckedDriver):
    __slots__ = ()

    async def stat_file(self, path: str) -> FileInfo:
        """Size and modification time of a file (not a directory). Raises PathNotFound."""
        inner = cast(FileStat, self._inner)
        return await self._guard("stat", path, inner.stat_file(self._check(path)))


class _WithTempFileCleanup(CheckedDriver):
    __slots__ = ()

    async def purge_temp_files(self, older_than: float) -> int:
        """Delete the temp files untouched for `older_than` seconds; return how many."""
        inner = cast(TempFileCleanup, self._inner)
        return await self._guard("purge", "/", inner.purge_temp_files(older_than))


# Each optional capability and the wrapper class that forwards it.
_CAPABILITIES: tuple[tuple[type, type[CheckedDriver]], ...] = (
    (LocalPath, _WithLocalPath),
    (RedirectURL, _WithRedirectURL),
    (TempFileCleanup, _WithTempFileCleanup),
    (FileStat, _WithFileStat),
)


@functools.cache
def _variant(has: tuple[bool, ...]) -> type[CheckedDriver]:
    """The wrapper class with exactly the capabilities flagged in `has`."""
    found = zip(_CAPABILITIES, has, strict=True)
    bases = tuple(wrapper for (_, wrapper), present in found if present)
    if not bases:
        return CheckedDriver
    if len(bases) == 1:
        return bases[0]
    name = "_With" + "And".join(base.__name__.removeprefix("_With") for base in bases)
    return type(name, bases, {"__slots__": ()})
