"""Resumable blob uploads of one repository.

A session is a directory under the repository (`_uploads/<id>`), so it belongs to that
repository alone: another repository asking for the id gets BlobUploadUnknown. A chunk
that fails (client gone, bad length) is truncated away; after a crash the session keeps
what reached the disk, which its `Range` reports, so the client resumes from there.

The digest is computed while the bytes arrive; when a session's chunks went to another
process (no hash state here), the data is hashed once more at commit. Verified content
moves into the blob store atomically, so a crash never exposes a partial blob.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterable
from dataclasses import dataclass

from mirror.digests import Digest, DigestHasher
from mirror.errors import BlobUploadUnknown, DigestInvalid, SizeInvalid, UploadRangeInvalid
from mirror.store import links, paths
from mirror.store.blobs import BlobInfo
from mirror.store.driver import PathNotFound, StorageDriver
from mirror.store.repo_blobs import RepositoryBlobs

_UPLOAD_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@dataclass(frozen=True, slots=True)
class UploadStatus:
    id: str
    size: int
    started_at: float


class HashStates:
    """Per-process running hashes of upload sessions, bounded (LRU)."""

    def __init__(self, limit: int = 1024) -> None:
        self._states: OrderedDict[tuple[str, str], DigestHasher] = OrderedDict()
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._limit = limit

    def take(self, key: tuple[str, str], size: int) -> DigestHasher | None:
        """The running hash for `key` if it covers exactly `size` bytes."""
        state = self._states.pop(key, None)
        return state if state is not None and state.size == size else None

    def keep(self, key: tuple[str, str], state: DigestHasher) -> None:
        self._states[key] = state
        while len(self._states) > self._limit:
            self._states.popitem(last=False)

    def forget(self, key: tuple[str, str]) -> None:
        self._states.pop(key, None)
        self._locks.pop(key, None)

    def lock(self, key: tuple[str, str]) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock


class UploadStore:
    def __init__(self, name: str, blobs: RepositoryBlobs, states: HashStates) -> None:
        self.name = name
        self.blobs = blobs
        self._driver: StorageDriver = blobs.store.driver
        self._states = states

    def _check_id(self, upload_id: str) -> str:
        if not _UPLOAD_ID.fullmatch(upload_id):
            raise BlobUploadUnknown(f"upload {upload_id[:64]!r} unknown")
        return upload_id

    async def start(self) -> UploadStatus:
        upload_id = str(uuid.uuid4())
        now = time.time()
        await self._driver.put_content(
            paths.upload_started(self.name, upload_id), f"{now:.6f}".encode()
        )
        await self._driver.put_content(paths.upload_data(self.name, upload_id), b"")
        self._states.keep((self.name, upload_id), DigestHasher())
        return UploadStatus(upload_id, 0, now)

    async def status(self, upload_id: str) -> UploadStatus:
        """Current size of a session; raise BlobUploadUnknown."""
        self._check_id(upload_id)
        try:
            info = await self._driver.stat(paths.upload_data(self.name, upload_id))
        except PathNotFound:
            raise BlobUploadUnknown(f"upload {upload_id} unknown") from None
        return UploadStatus(upload_id, info.size, info.mtime)

    async def append(
        self,
        upload_id: str,
        body: AsyncIterable[bytes],
        *,
        start: int | None = None,
        length: int | None = None,
    ) -> UploadStatus:
        """Append one chunk; `start` (from Content-Range) must equal the current size.

        Raises BlobUploadUnknown, UploadRangeInvalid (out of order) or SizeInvalid (the body
        is not `length` bytes); on any failure the chunk is rolled back entirely.
        """
        key = (self.name, upload_id)
        async with self._states.lock(key):
            current = await self.status(upload_id)
            if start is not None and start != current.size:
                raise UploadRangeInvalid(
                    f"chunk starts at {start}, upload is {current.size} bytes",
                    size=current.size,
                )
            hasher = self._states.take(key, current.size)
            writer = await self._driver.writer(paths.upload_data(self.name, upload_id), append=True)
            written = 0
            try:
                async for chunk in body:
                    if chunk:
                        await writer.write(chunk)
                        if hasher is not None:
                            hasher.update(chunk)
                        written += len(chunk)
                if length is not None and written != length:
                    raise SizeInvalid(f"chunk has {written} bytes, Content-Length said {length}")
                await writer.commit()
            except BaseException:
                await writer.cancel()
                raise
            if hasher is not None:
                self._states.keep(key, hasher)
            return UploadStatus(upload_id, writer.size, current.started_at)

    async def finish(
        self,
        upload_id: str,
        digest: Digest,
        body: AsyncIterable[bytes] | None = None,
        *,
        length: int | None = None,
    ) -> BlobInfo:
        """Append an optional last chunk, verify `digest`, publish and link the blob.

        Raises BlobUploadUnknown, DigestInvalid (the session is discarded) or SizeInvalid.
        """
        if body is not None:
            await self.append(upload_id, body, length=length)
        key = (self.name, upload_id)
        data = paths.upload_data(self.name, upload_id)
        async with self._states.lock(key):
            current = await self.status(upload_id)
            hasher = self._states.take(key, current.size)
            if hasher is None or hasher.algorithm != digest.algorithm:
                hasher = await self._rehash(data, digest.algorithm)
            actual = hasher.digest()
            if actual != digest:
                await self._discard(upload_id)
                raise DigestInvalid(f"uploaded content has digest {actual}, not {digest}")
            info = await self.blobs.store.adopt(data, digest)
            await self.blobs.link(digest)
            await self._discard(upload_id)
            return info

    async def cancel(self, upload_id: str) -> None:
        """Abort a session; raise BlobUploadUnknown when there is none."""
        self._check_id(upload_id)
        if not await links.remove(self._driver, paths.upload_dir(self.name, upload_id)):
            raise BlobUploadUnknown(f"upload {upload_id} unknown")
        self._states.forget((self.name, upload_id))

    async def _discard(self, upload_id: str) -> None:
        await links.remove(self._driver, paths.upload_dir(self.name, upload_id))
        self._states.forget((self.name, upload_id))

    async def _rehash(self, path: str, algorithm: str) -> DigestHasher:
        hasher = DigestHasher(algorithm)
        stream = await self._driver.reader(path)
        try:
            async for chunk in stream:
                hasher.update(chunk)
        finally:
            await stream.aclose()
        return hasher
