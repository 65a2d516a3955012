"""What the S3 and Azure drivers share: the StorageDriver operations on an obstore store.

Keys are registry:2's: driver path ``/docker/registry/v2/x`` is the key
``<root>/docker/registry/v2/x`` (``docker/registry/v2/x`` without a root), so a bucket
filled by the reference registry is served as is, and the reverse.

There are no directories (``traits.directories`` is False): a directory is a key prefix
that exists while some object lies below it. `list` is one delimiter listing (objects and
common prefixes); `stat` of a directory asks for one key below it (`stat_file`, for
callers that want a file, is the HEAD alone); `delete` of a directory lists the prefix
and deletes in batches. A name can be a file and a directory at once (the reference
registry never makes one); `stat` and reads see the file, `delete` removes both.

Atomicity: `put_content` is one PUT and writers complete one multipart upload at commit
(see `objio`), so readers see the old or the new object, never a part. `move` is a
server-side copy then a delete of the source: the destination changes atomically, but a
crash between the two leaves both names. Moving a directory is not supported.

Two obstore stores serve each driver: one for streaming reads, whose requests may last as
long as their consumer reads (bounded by `Tuning.stream_timeout`, with a stall timeout),
and one for everything else, where each request is bounded by `Tuning.request_timeout`.
"""

from __future__ import annotations

import asyncio
import builtins
import time
from collections.abc import AsyncGenerator
from datetime import timedelta
from typing import TYPE_CHECKING, Literal

import obstore
from obstore.exceptions import GenericError

from mirror.store.driver import (
    CHUNK_SIZE,
    DriverTraits,
    FileInfo,
    FileWriter,
    InvalidOffset,
    OperationUnsupported,
    PathNotFound,
    StorageDriverError,
)
from mirror.store.drivers.base import is_inside, is_temp_name, split_path
from mirror.store.drivers.objerrors import status_of, translated
from mirror.store.drivers.objio import ObjectChunks, ObjectWriter
from mirror.store.drivers.objsettings import Tuning

if TYPE_CHECKING:
    from obstore import Attributes, GetOptions
    from obstore.store import AzureStore, S3Store

    Store = S3Store | AzureStore

_DELETE_BATCH = 1000  # S3's DeleteObjects limit
_REDIRECT_METHODS: dict[str, Literal["GET", "HEAD"]] = {"GET": "GET", "HEAD": "HEAD"}


class ObjectStoreDriver:
    """A `StorageDriver` (with `RedirectURL`) over obstore stores; see the module docstring."""

    name = "objectstore"
    traits = DriverTraits(append=False, directories=False)
    # The method a URL for HEAD is signed for (S3 signs the method; an Azure SAS with
    # read permission serves GET and HEAD alike, and obstore grants none for HEAD).
    head_signed_as: Literal["GET", "HEAD"] = "HEAD"

    def __init__(
        self,
        store: Store,
        read_store: Store,
        *,
        root: str,
        part_size: int,
        tuning: Tuning,
        attributes: Attributes | None = None,
    ) -> None:
        self._store = store
        self._read_store = read_store
        self._root = root
        self._part_size = part_size
        self._tuning = tuning
        self._attributes = attributes

    def key(self, path: str) -> str:
        """The object key of a driver path ("" is the root of the bucket or container)."""
        if path == "/":
            return self._root
        return f"{self._root}{path}" if self._root else path[1:]

    async def get_content(self, path: str) -> bytes:
        """The whole content of an object. Raises PathNotFound (also for directories)."""
        key = self._file_key(path)
        with translated(self.name, "get", path):
            result = await obstore.get_async(self._store, key)
            return bytes(await result.bytes_async())

    async def put_content(self, path: str, content: bytes) -> None:
        """One PUT of `content` (atomic; replaces the object)."""
        split_path(path)
        with translated(self.name, "put", path):
            await obstore.put_async(
                self._store,
                self.key(path),
                content,
                attributes=self._attributes,
                use_multipart=len(content) > self._part_size,
                chunk_size=self._part_size,
                max_concurrency=self._tuning.part_concurrency,
            )

    async def reader(self, path: str, offset: int = 0) -> AsyncGenerator[bytes, None]:
        """One streaming GET from `offset` (issued now, so PathNotFound comes at open)."""
        key = self._file_key(path)
        if offset < 0:
            raise InvalidOffset(f"offset {offset} is negative", path=path)
        with translated(self.name, "open", path):
            try:
                options: GetOptions = {"range": {"offset": offset}} if offset else {}
                result = await obstore.get_async(self._read_store, key, options=options)
            except GenericError as exc:
                if not offset or status_of(exc) not in (None, 416):
                    raise
                # Past the end, or exactly at it (which S3 answers 416 too): the size decides.
                size = (await obstore.head_async(self._store, key))["size"]
                if offset > size:
                    raise InvalidOffset(
                        f"offset {offset} outside {path} of size {size}", path=path
                    ) from None
                return ObjectChunks(None, self.name, path)
        return ObjectChunks(result.stream(min_chunk_size=CHUNK_SIZE), self.name, path)

    async def writer(self, path: str, *, append: bool = False) -> FileWriter:
        """A writer completing one upload at commit (append writers are unsupported)."""
        if append:
            raise OperationUnsupported(f"{self.name}: append writers are not supported", path=path)
        split_path(path)
        return ObjectWriter(
            self._store,
            self.key(path),
            driver=self.name,
            path=path,
            part_size=self._part_size,
            concurrency=self._tuning.part_concurrency,
            attributes=self._attributes,
        )

    async def stat(self, path: str) -> FileInfo:
        """An object's size and mtime, or a prefix holding objects as a directory (with
        the time of the call as its mtime: object stores keep none). Raises PathNotFound."""
        if path == "/":
            return FileInfo(path, 0, time.time(), True)
        try:
            return await self.stat_file(path)
        except PathNotFound:
            with translated(self.name, "stat", path):
                if await self._holds_objects(self.key(path)):
                    return FileInfo(path, 0, time.time(), True)
            raise

    async def stat_file(self, path: str) -> FileInfo:
        """An object's size and mtime: one HEAD (`stat` also lists the prefix when there
        is no object, to find a directory). Raises PathNotFound."""
        key = self._file_key(path)
        with translated(self.name, "stat", path):
            try:
                meta = await obstore.head_async(self._store, key)
            except FileNotFoundError:
                raise PathNotFound(f"{path} not found", path=path) from None
        return FileInfo(path, meta["size"], meta["last_modified"].timestamp())

    async def list(self, path: str) -> builtins.list[str]:
        """Sorted names below `path` (objects and prefixes; temp names left out). Raises
        PathNotFound when nothing lies below a path other than the root."""
        prefix = self.key(path) or None
        with translated(self.name, "list", path):
            listing = await obstore.list_with_delimiter_async(self._store, prefix)
        names = {entry.rsplit("/", 1)[-1] for entry in listing["common_prefixes"]}
        names.update(meta["path"].rsplit("/", 1)[-1] for meta in listing["objects"])
        if not names and path != "/":
            raise PathNotFound(f"directory {path} not found", path=path)
        return sorted(name for name in names if not is_temp_name(name))

    async def move(self, src: str, dst: str) -> None:
        """Server-side copy, then delete the source (see the module docstring)."""
        split_path(dst)
        if src == dst:
            info = await self.stat(src)
            if info.is_dir:
                raise OperationUnsupported(f"{src} is a directory: moving one is unsupported")
            return
        if is_inside(dst, src):
            raise StorageDriverError(f"cannot move {src} into itself", path=src)
        source = self._file_key(src)
        with translated(self.name, "move", src):
            try:
                await self.copy(source, self.key(dst))
            except FileNotFoundError:
                if await self._holds_objects(source):
                    raise OperationUnsupported(
                        f"{src} is a directory: moving one is unsupported", path=src
                    ) from None
                raise
            await obstore.delete_async(self._store, source)

    async def copy(self, source: str, target: str) -> None:
        """Copy one object server-side (drivers refine this for their limits)."""
        await obstore.copy_async(self._store, source, target, overwrite=True)

    async def delete(self, path: str) -> None:
        """Delete the object at `path` and every object below it, in batches. Deleting
        "/" empties the root. Raises PathNotFound when there was nothing."""
        key = self.key(path)
        with translated(self.name, "delete", path):
            # The object itself (a HEAD) and the objects below it (a listing) are asked
            # for at once: one round trip, not two.
            is_file, below = await asyncio.gather(
                self._is_object(key) if path != "/" else _false(),
                self._delete_below(key),
                return_exceptions=True,
            )
            if isinstance(is_file, BaseException):
                raise is_file
            if isinstance(below, BaseException):
                raise below
            if is_file:
                try:
                    await obstore.delete_async(self._store, key)
                except FileNotFoundError:
                    pass  # deleted meanwhile: the outcome is the same
        if not (is_file or below) and path != "/":
            raise PathNotFound(f"{path} not found", path=path)

    async def _is_object(self, key: str) -> bool:
        try:
            await obstore.head_async(self._store, key)
        except FileNotFoundError:
            return False
        return True

    async def _delete_below(self, key: str) -> bool:
        """Delete every object below `key`; True when there was one."""
        found = False
        stream = obstore.list(self._store, key or None, chunk_size=_DELETE_BATCH)
        async for batch in stream:
            keys = [meta["path"] for meta in batch]
            if keys:
                found = True
                await obstore.delete_async(self._store, keys)
        return found

    async def redirect_url(self, path: str, method: str) -> str | None:
        """A URL signed for `method` (GET or HEAD) on the object, valid for
        `Tuning.redirect_expiry` seconds; None for other methods."""
        signed = _REDIRECT_METHODS.get(method)
        if signed is None:
            return None
        if signed == "HEAD":
            signed = self.head_signed_as
        key = self._file_key(path)
        expiry = timedelta(seconds=self._tuning.redirect_expiry)
        with translated(self.name, "sign", path):
            return await obstore.sign_async(self._store, signed, key, expiry)

    def _file_key(self, path: str) -> str:
        if path == "/":
            raise PathNotFound("/ is a directory, not a file", path=path)
        return self.key(path)

    async def _holds_objects(self, key: str) -> bool:
        stream = obstore.list(self._store, key or None, chunk_size=1)
        async for batch in stream:
            if batch:
                return True
        return False


async def _false() -> bool:
    return False
