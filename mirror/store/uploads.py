"""Resumable blob uploads of one repository.

A session is a directory under the repository (`_uploads/<id>`), so it belongs to that
repository alone: another repository asking for the id gets BlobUploadUnknown. A chunk
that fails (client gone, bad length) is truncated away; after a crash the session keeps
what reached the disk, which its `Range` reports, so the client resumes from there.

Every change to a session (append, finish, cancel) holds the session's lease
(`mirror.store.sessions`), so the requests of one session are ordered across processes
and replicas. The digest is computed while the bytes arrive; when a session's chunks
went to another process (no hash state here), the data is hashed once more at commit.
What is published is exactly what was verified: the commit hashes (or holds the hash
of) the session's bytes and moves that same file into the blob store atomically while
nobody can append to it, so a crash never exposes a partial blob and no late chunk can
ever reach a published one.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterable
from dataclasses import dataclass
from typing import Protocol

from mirror.coordination.leases import Lease
from mirror.digests import Digest, DigestHasher
from mirror.errors import (
    BlobUploadUnknown,
    DigestInvalid,
    SizeInvalid,
    UploadBusy,
    UploadRangeInvalid,
)
from mirror.store import links, paths
from mirror.store.blobs import BlobInfo
from mirror.store.driver import FileBusy, FileWriter, PathNotFound, StorageDriver
from mirror.store.faults import storage_faults
from mirror.store.repo_blobs import RepositoryBlobs
from mirror.store.sessions import UploadSessions

_UPLOAD_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class _Updating(Protocol):
    """A hash being computed (a digest's, or one whose state can be saved)."""

    def update(self, data: bytes, /) -> None: ...


@dataclass(frozen=True, slots=True)
class UploadStatus:
    id: str
    size: int
    started_at: float


class Uploads(Protocol):
    """What the front end asks of a repository's upload sessions (`UploadStore`, or a
    wrapper around it); see `UploadStore` for each method's contract."""

    async def start(self) -> UploadStatus: ...

    async def status(self, upload_id: str) -> UploadStatus: ...

    async def append(
        self,
        upload_id: str,
        body: AsyncIterable[bytes],
        *,
        start: int | None = None,
        length: int | None = None,
    ) -> UploadStatus: ...

    async def finish(
        self,
        upload_id: str,
        digest: Digest,
        body: AsyncIterable[bytes] | None = None,
        *,
        length: int | None = None,
    ) -> BlobInfo: ...

    async def cancel(self, upload_id: str) -> None: ...


class UploadStore:
    def __init__(self, name: str, blobs: RepositoryBlobs, sessions: UploadSessions) -> None:
        self.name = name
        self.blobs = blobs
        self._driver: StorageDriver = blobs.store.driver
        self._sessions = sessions
        self._hashes = sessions.hashes

    def _check_id(self, upload_id: str) -> str:
        if not _UPLOAD_ID.fullmatch(upload_id):
            raise BlobUploadUnknown(f"upload {upload_id[:64]!r} unknown")
        return upload_id

    async def start(self) -> UploadStatus:
        upload_id = str(uuid.uuid4())
        now = time.time()
        with storage_faults():
            await self._driver.put_content(
                paths.upload_started(self.name, upload_id), f"{now:.6f}".encode()
            )
            await self._driver.put_content(paths.upload_data(self.name, upload_id), b"")
        self._hashes.keep((self.name, upload_id), DigestHasher())
        return UploadStatus(upload_id, 0, now)

    async def status(self, upload_id: str) -> UploadStatus:
        """Current size of a session; raise BlobUploadUnknown.

        Takes no lease: while a chunk streams in, the size may trail what was received.
        """
        self._check_id(upload_id)
        for path in (paths.upload_data, paths.upload_sealed):
            try:
                info = await self._driver.stat(path(self.name, upload_id))
            except PathNotFound:
                continue
            return UploadStatus(upload_id, info.size, info.mtime)
        raise BlobUploadUnknown(f"upload {upload_id} unknown")

    async def _current(self, upload_id: str) -> UploadStatus:
        """The session's size, holding its lease: a commit that stopped after sealing the
        data (killed, or its lease lost) gives it back to the session first."""
        data = paths.upload_data(self.name, upload_id)
        try:
            info = await self._driver.stat(data)
        except PathNotFound:
            try:
                await self._driver.move(paths.upload_sealed(self.name, upload_id), data)
                info = await self._driver.stat(data)
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

        Raises BlobUploadUnknown, UploadRangeInvalid (out of order), SizeInvalid (the body
        is not `length` bytes) or UploadBusy (another request kept the session too long);
        on any failure the chunk is rolled back entirely.
        """
        key = (self.name, self._check_id(upload_id))
        with storage_faults():
            async with self._sessions.exclusive(key) as lease:
                return await self._append(key, lease, body, start, length)

    async def _current_at(self, upload_id: str, start: int | None) -> UploadStatus:
        """The session's status, checked against where a chunk says it starts."""
        current = await self._current(upload_id)
        if start is not None and start != current.size:
            raise UploadRangeInvalid(
                f"chunk starts at {start}, upload is {current.size} bytes", size=current.size
            )
        return current

    async def _append(
        self,
        key: tuple[str, str],
        lease: Lease,
        body: AsyncIterable[bytes],
        start: int | None,
        length: int | None,
    ) -> UploadStatus:
        upload_id = key[1]
        current = await self._current_at(upload_id, start)
        hasher = self._hashes.take(key, current.size)
        try:
            writer = await self._driver.writer(paths.upload_data(self.name, upload_id), append=True)
        except FileBusy:
            raise self._busy(upload_id) from None
        try:
            await self._write_chunk(
                writer, body, hasher=hasher, length=length, lease=lease, upload_id=upload_id
            )
            await writer.commit()
        except BaseException:
            await writer.cancel()
            raise
        if hasher is not None:
            self._hashes.keep(key, hasher)
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

        Raises BlobUploadUnknown, DigestInvalid (the session is discarded), SizeInvalid or
        UploadBusy. The chunk, the check and the publication happen under one lease.
        """
        key = (self.name, self._check_id(upload_id))
        with storage_faults():
            return await self._finish(key, digest, body, length)

    async def _write_chunk(
        self,
        writer: FileWriter,
        body: AsyncIterable[bytes],
        *,
        hasher: _Updating | None,
        length: int | None,
        lease: Lease,
        upload_id: str,
    ) -> int:
        """Stream `body` into `writer`, hashing it on the way; the bytes written. Raises
        SizeInvalid when they are not the `length` the request said, UploadBusy when the
        session's lease was lost meanwhile. Committing or cancelling is the caller's."""
        written = 0
        async for chunk in body:
            if chunk:
                await writer.write(chunk)
                if hasher is not None:
                    hasher.update(chunk)
                written += len(chunk)
        if length is not None and written != length:
            raise SizeInvalid(f"chunk has {written} bytes, Content-Length said {length}")
        if lease.lost:
            raise self._busy(upload_id)
        return written

    async def _finish(
        self,
        key: tuple[str, str],
        digest: Digest,
        body: AsyncIterable[bytes] | None,
        length: int | None,
    ) -> BlobInfo:
        upload_id = key[1]
        async with self._sessions.exclusive(key) as lease:
            if body is not None:
                await self._append(key, lease, body, None, length)
            current = await self._current(upload_id)
            # Moved away from `data` first: whatever is appended from here on (by a
            # request that lost its lease) goes elsewhere, and what is hashed below is
            # exactly what gets published.
            sealed = paths.upload_sealed(self.name, upload_id)
            try:
                await self._driver.move(paths.upload_data(self.name, upload_id), sealed)
                size = (await self._driver.stat(sealed)).size
            except (FileBusy, PathNotFound):
                raise self._busy(upload_id) from None
            hasher = self._hashes.take(key, current.size)
            if hasher is None or hasher.algorithm != digest.algorithm or size != current.size:
                hasher = await self._rehash(sealed, digest.algorithm)
            actual = hasher.digest()
            if actual != digest:
                await self._discard(upload_id)
                raise DigestInvalid(f"uploaded content has digest {actual}, not {digest}")
            if lease.lost:
                raise self._busy(upload_id)
            try:
                info = await self.blobs.store.adopt(sealed, digest, hasher.size)
            except PathNotFound:  # given back to the session by a request that took over
                raise self._busy(upload_id) from None
            await self.blobs.link(digest)
            await self._discard(upload_id)
            return info

    async def cancel(self, upload_id: str) -> None:
        """Abort a session; raise BlobUploadUnknown when there is none, UploadBusy."""
        key = (self.name, self._check_id(upload_id))
        async with self._sessions.exclusive(key):
            if not await links.remove(self._driver, paths.upload_dir(self.name, upload_id)):
                raise BlobUploadUnknown(f"upload {upload_id} unknown")
        self._hashes.forget(key)

    def _busy(self, upload_id: str) -> UploadBusy:
        # Without a lease held by someone else, only a request that lost its lease (it
        # stalled past the ttl) gets here: the driver still keeps the bytes apart.
        return UploadBusy(f"upload {upload_id} is busy: another request is writing to it")

    async def _discard(self, upload_id: str) -> None:
        await links.remove(self._driver, paths.upload_dir(self.name, upload_id))
        self._hashes.forget((self.name, upload_id))

    async def _rehash(self, path: str, algorithm: str) -> DigestHasher:
        hasher = DigestHasher(algorithm)
        stream = await self._driver.reader(path)
        try:
            async for chunk in stream:
                hasher.update(chunk)
        finally:
            await stream.aclose()
        return hasher
