"""Upload sessions on drivers without append writers (the object stores).

An object cannot be appended to, and obstore's multipart uploads cannot be continued by
another request (or replica): a multipart upload lives in one writer. So each chunk (a
PATCH, or the body of the final PUT) is an object of its own in the session,
`parts/<offset>`, written by one streaming writer (a multipart upload of the driver's part
size: a 2 GiB PATCH holds a few parts in memory, never the chunk) that publishes it only
at its commit, so a chunk that fails leaves nothing behind and the session's size is
always a sum of whole chunks. After each chunk its hash state is saved beside it
(`hashstates/<alg>/<offset>`, as registry:2 does), so the commit, on whatever replica,
verifies the digest from the saved state without reading the data again; a missing or
unreadable state (a chunk whose process died before saving it) only costs that read.

The commit publishes the verified bytes atomically: one chunk (what docker, skopeo and
containerd send) is moved into place with a server-side copy; several are streamed in
order into one writer of the blob (`BlobStore.assemble`), visible at its commit only.
Sessions are ordered by the same lease as on the file system (`UploadSessions`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterable

from mirror.coordination.leases import Lease
from mirror.digests import Digest, DigestHasher
from mirror.errors import (
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
)
from mirror.store import paths
from mirror.store.blobs import BlobInfo
from mirror.store.driver import FileInfo, PathNotFound
from mirror.store.faults import storage_faults
from mirror.store.hashstate import ResumableHasher
from mirror.store.uploads import UploadStatus, UploadStore

Hasher = ResumableHasher | DigestHasher


class PartUploadStore(UploadStore):
    """`UploadStore` whose sessions keep each chunk as an object (see the module doc)."""

    async def start(self) -> UploadStatus:
        upload_id = str(uuid.uuid4())
        now = time.time()
        with storage_faults():
            await self._driver.put_content(
                paths.upload_started(self.name, upload_id), f"{now:.6f}".encode()
            )
        return UploadStatus(upload_id, 0, now)

    async def status(self, upload_id: str) -> UploadStatus:
        self._check_id(upload_id)
        return await self._current(upload_id)

    async def _parts(self, upload_id: str) -> list[int]:
        """The offsets of the session's chunks, in order; BlobUploadUnknown."""
        try:
            names = await self._driver.list(paths.upload_parts(self.name, upload_id))
        except PathNotFound:
            names = []
        offsets = sorted(int(name) for name in names if name.isdigit())
        if not offsets:
            try:
                await self._driver.stat(paths.upload_started(self.name, upload_id))
            except PathNotFound:
                raise BlobUploadUnknown(f"upload {upload_id} unknown") from None
        return offsets

    async def _current(self, upload_id: str) -> UploadStatus:
        offsets = await self._parts(upload_id)
        if not offsets:
            info = await self._stat(paths.upload_started(self.name, upload_id), upload_id)
            return UploadStatus(upload_id, 0, info.mtime)
        last = await self._stat(paths.upload_part(self.name, upload_id, offsets[-1]), upload_id)
        return UploadStatus(upload_id, offsets[-1] + last.size, last.mtime)

    async def _stat(self, path: str, upload_id: str) -> FileInfo:
        try:
            return await self._driver.stat(path)
        except PathNotFound:  # removed meanwhile (cancelled, committed)
            raise BlobUploadUnknown(f"upload {upload_id} unknown") from None

    async def _hasher(self, upload_id: str, algorithm: str, size: int) -> Hasher | None:
        """The running hash after `size` bytes: fresh at 0, else the saved state."""
        if size == 0:
            return ResumableHasher.start(algorithm) or DigestHasher(algorithm)
        try:
            saved = await self._driver.get_content(
                paths.upload_hashstate(self.name, upload_id, algorithm, size)
            )
        except PathNotFound:
            return None
        return ResumableHasher.restore(algorithm, size, saved)

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
        hasher = await self._hasher(upload_id, "sha256", current.size)
        writer = await self._driver.writer(paths.upload_part(self.name, upload_id, current.size))
        try:
            written = await self._write_chunk(
                writer, body, hasher=hasher, length=length, lease=lease, upload_id=upload_id
            )
            if written:
                await writer.commit()
        finally:
            await writer.cancel()  # idempotent; after a commit it does nothing
        end = current.size + written
        if written and isinstance(hasher, ResumableHasher):
            await self._driver.put_content(
                paths.upload_hashstate(self.name, upload_id, hasher.algorithm, end),
                hasher.save(),
            )
        return UploadStatus(upload_id, end, current.started_at)

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
            offsets = await self._parts(upload_id)
            sources = [paths.upload_part(self.name, upload_id, offset) for offset in offsets]
            size = 0
            for offset, source in zip(offsets, sources, strict=True):
                if offset != size:  # only a damaged session (parts removed by hand)
                    await self._discard(upload_id)
                    raise BlobUploadInvalid(f"upload {upload_id} lost the bytes at {size}")
                size += (await self._stat(source, upload_id)).size
            hasher = await self._hasher(upload_id, digest.algorithm, size)
            if hasher is None or hasher.size != size:
                hasher = await self._rehash_parts(sources, digest.algorithm)
            actual = hasher.digest()
            if actual != digest:
                await self._discard(upload_id)
                raise DigestInvalid(f"uploaded content has digest {actual}, not {digest}")
            if lease.lost:
                raise self._busy(upload_id)
            if sources:
                info = await self.blobs.store.assemble(sources, digest, size)
            else:
                info = await self.blobs.store.put(b"", digest)
            await self.blobs.link(digest)
            await self._discard(upload_id)
            return info

    async def _rehash_parts(self, sources: list[str], algorithm: str) -> DigestHasher:
        hasher = DigestHasher(algorithm)
        for source in sources:
            stream = await self._driver.reader(source)
            try:
                async for chunk in stream:
                    hasher.update(chunk)
            finally:
                await stream.aclose()
        return hasher
