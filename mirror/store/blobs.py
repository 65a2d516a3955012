"""The content-addressed blob store shared by every repository.

Content is stored once per digest. It becomes visible only after its digest and size have
been checked: ingests write to a hidden temporary object and commit atomically.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from anyio import to_thread

from mirror.digests import Digest, DigestHasher
from mirror.errors import (
    BlobUnknown,
    DigestInvalid,
    RangeNotSatisfiable,
    SizeInvalid,
    Unavailable,
)
from mirror.store import paths
from mirror.store.driver import (
    InvalidOffset,
    LocalPath,
    PathNotFound,
    RedirectURL,
    StorageDriver,
)
from mirror.store.ingest import peerwire
from mirror.store.ingest.remote import Peers
from mirror.store.ingest.staging import PartialReader, StagedWrite, Staging, staging_for
from mirror.store.tracking import ContentTracker

THREAD_HASH_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class BlobInfo:
    digest: Digest
    size: int


class BlobIngest:
    """One verified write of a blob whose digest is known in advance.

    `write` hashes as it goes; `commit` makes the blob visible only when digest and size
    match, otherwise cancels and raises. `cancel` is idempotent. While writing, the
    partial blob can be read from `locator` (`BlobStore.open_partial`), in this process or
    in others that share the store.
    """

    def __init__(self, writer: StagedWrite, expected: Digest) -> None:
        self._writer = writer
        self.expected = expected
        self._hasher = DigestHasher(expected.algorithm)
        self._done = False

    @property
    def size(self) -> int:
        return self._hasher.size

    @property
    def locator(self) -> str:
        """Where the partial blob is found, for `BlobStore.open_partial`."""
        return self._writer.locator

    async def reserve(self, size: int) -> None:
        """Set aside room for the blob's `size` bytes where the storage can; raises
        Unavailable when there is not enough (see `StagedWrite.reserve`)."""
        await self._writer.reserve(size)

    async def write(self, data: bytes) -> None:
        """Hash and write `data`; large pieces hash in a worker thread while they are
        written (both release the GIL), small ones inline."""
        if len(data) < THREAD_HASH_BYTES:
            self._hasher.update(data)
            await self._writer.write(data)
            return
        await asyncio.gather(
            to_thread.run_sync(self._hasher.update, data), self._writer.write(data)
        )

    async def flush(self) -> None:
        """Make everything written so far readable by partial readers."""
        await self._writer.flush()

    async def verify(self, expected_size: int | None = None) -> BlobInfo:
        """Check digest and size of what was written (flush first to let readers see it
        all); raise DigestInvalid / SizeInvalid after cancelling. The content is right from
        here on, though not yet published (see `commit`)."""
        if expected_size is not None and expected_size != self._hasher.size:
            await self.cancel()
            raise SizeInvalid(
                f"blob {self.expected}: expected {expected_size} bytes, got {self._hasher.size}"
            )
        actual = self._hasher.digest()
        if actual != self.expected:
            await self.cancel()
            raise DigestInvalid(f"content digest {actual} does not match {self.expected}")
        return BlobInfo(actual, self._hasher.size)

    async def commit(self, expected_size: int | None = None) -> BlobInfo:
        """Verify, then publish durably (fsync and atomic rename)."""
        info = await self.verify(expected_size)
        await self._writer.commit()
        self._done = True
        return info

    async def cancel(self) -> None:
        if not self._done:
            self._done = True
            await self._writer.cancel()


class BlobStore:
    """Global blob storage; repositories decide which blobs they may read (links)."""

    def __init__(
        self,
        driver: StorageDriver,
        *,
        staging: Staging | None = None,
        tracker: ContentTracker | None = None,
        redirect: bool = False,
        spool_directory: str | None = None,
        peers: Peers | None = None,
    ) -> None:
        self.driver = driver
        self._local = driver if isinstance(driver, LocalPath) else None
        self._staging = staging or staging_for(driver, spool_directory, peers)
        self._signer = driver if redirect and isinstance(driver, RedirectURL) else None
        self.tracker = tracker or ContentTracker()

    async def still_stored(self, digest: Digest) -> bool:
        """Whether a blob found stored stays so: claimed against a garbage collection
        deleting it (see `ContentTracker.claim`), then checked again. Raises Unavailable
        when a collection keeps it marked for longer than a claim waits."""
        if not self.tracker.active:
            return True  # nobody collects while this store serves
        if await self.tracker.claim([digest]):
            raise Unavailable(f"blob {digest} is being garbage-collected; retry")
        return await self.exists(digest)

    async def redirect_url(self, digest: Digest) -> str | None:
        """A signed URL from which a client may GET the stored blob itself (registry:2's
        `storage.redirect`), or None when redirects are off or the driver signs none.
        The URL does not prove that the blob exists: ask only for a stored one."""
        if self._signer is None:
            return None
        return await self._signer.redirect_url(paths.blob_data(digest), "GET")

    async def stat(self, digest: Digest) -> BlobInfo:
        """Size of a stored blob; raise BlobUnknown."""
        try:
            info = await self.driver.stat(paths.blob_data(digest))
        except PathNotFound:
            raise BlobUnknown(f"blob {digest} unknown") from None
        return BlobInfo(digest, info.size)

    async def exists(self, digest: Digest) -> bool:
        try:
            await self.driver.stat(paths.blob_data(digest))
        except PathNotFound:
            return False
        return True

    def local_path(self, digest: Digest) -> str | None:
        """The OS path of the blob's data when the driver is local (zero-copy sending)."""
        return self._local.local_path(paths.blob_data(digest)) if self._local else None

    async def get(self, digest: Digest, max_size: int) -> bytes:
        """The whole content of a small blob (manifests, configs); raise BlobUnknown, or
        SizeInvalid when it is larger than `max_size` (known before anything is read)."""
        size = (await self.stat(digest)).size
        if size > max_size:
            raise SizeInvalid(f"blob {digest} is {size} bytes, more than {max_size}")
        try:
            return await self.driver.get_content(paths.blob_data(digest))
        except PathNotFound:
            raise BlobUnknown(f"blob {digest} unknown") from None

    async def open(self, digest: Digest, offset: int = 0) -> AsyncGenerator[bytes, None]:
        """Stream a blob from `offset`; the caller closes the generator.

        Raises BlobUnknown, or RangeNotSatisfiable when `offset` lies beyond the end.
        """
        try:
            return await self.driver.reader(paths.blob_data(digest), offset)
        except PathNotFound:
            raise BlobUnknown(f"blob {digest} unknown") from None
        except InvalidOffset:
            size = (await self.stat(digest)).size
            raise RangeNotSatisfiable(f"offset {offset} beyond blob size", size=size) from None

    async def put(self, data: bytes, digest: Digest | None = None) -> BlobInfo:
        """Store small content in one call; with `digest`, verify it first."""
        actual = Digest.of(data, digest.algorithm if digest else "sha256")
        if digest is not None and actual != digest:
            raise DigestInvalid(f"content digest {actual} does not match {digest}")
        if not await self.exists(actual) or not await self.still_stored(actual):
            await self.driver.put_content(paths.blob_data(actual), data)
        return BlobInfo(actual, len(data))

    async def ingest(self, expected: Digest) -> BlobIngest:
        """Start a verified streaming write of a blob with a known digest."""
        return BlobIngest(await self._staging.create(paths.blob_data(expected)), expected)

    async def open_partial(self, digest: Digest, locator: str) -> PartialReader:
        """Read the partial blob `digest` that an ingest (maybe another process's) is
        writing at `locator`. Raises PartialGone when it is not there (any more): committed,
        cancelled, or out of this process's reach. The caller closes the reader.
        """
        return await self._staging.open(paths.blob_data(digest), locator)

    async def discard_partial(self, digest: Digest, locator: str) -> bool:
        """Remove the partial blob at `locator` if its writer is known to be gone (its
        process died); True when it was removed. A live writer's partial stays."""
        return await self._staging.discard(paths.blob_data(digest), locator)

    async def serve_partial(self, query: str, auth: str | None) -> peerwire.PeerAnswer:
        """The answer to another replica's request for a partial blob spooled here
        (`peerwire`): 404 unless partials are spooled and served (`Peers`)."""
        from mirror.store.ingest.spool import SpoolStaging

        if not isinstance(self._staging, SpoolStaging):
            return peerwire.NOT_SERVED
        return await self._staging.serve(query, auth)

    def purge_spool(self, older_than: float) -> int:
        """Remove the spooled partials of downloads whose process died (see SpoolStaging)."""
        purge = getattr(self._staging, "purge", None)
        return int(purge(older_than)) if purge is not None else 0

    async def adopt(self, src: str, digest: Digest, size: int) -> BlobInfo:
        """Move content verified to be `digest` (`size` bytes) at driver path `src` into
        place. When the blob is already stored, `src` is deleted instead (same content by
        digest) - unless the stored copy has another size: it is damaged, and replaced.
        """
        try:
            stored = await self.stat(digest)
        except BlobUnknown:
            stored = None
        if stored is not None and stored.size == size and await self.still_stored(digest):
            try:
                await self.driver.delete(src)
            except PathNotFound:
                pass
            return stored
        await self.driver.move(src, paths.blob_data(digest))
        return BlobInfo(digest, size)

    async def assemble(self, sources: list[str], digest: Digest, size: int) -> BlobInfo:
        """Publish the concatenation of the driver paths `sources`, verified to be `digest`
        (`size` bytes), then delete them. One source is moved (`adopt`); several are
        streamed in order into one writer, which publishes atomically at its commit (the
        drivers without append writers have no server-side concatenation here: obstore
        offers no multipart copy). Memory stays within the writer's part buffers.
        """
        if len(sources) == 1:
            return await self.adopt(sources[0], digest, size)
        stored = await self._stored_size(digest)
        if stored != size:
            writer = await self.driver.writer(paths.blob_data(digest))
            try:
                for source in sources:
                    stream = await self.driver.reader(source)
                    try:
                        async for chunk in stream:
                            await writer.write(chunk)
                    finally:
                        await stream.aclose()
                if writer.size != size:
                    raise SizeInvalid(f"blob {digest}: parts hold {writer.size}, not {size}")
                await writer.commit()
            except BaseException:
                await writer.cancel()
                raise
        for source in sources:
            try:
                await self.driver.delete(source)
            except PathNotFound:
                pass
        return BlobInfo(digest, size)

    async def _stored_size(self, digest: Digest) -> int | None:
        try:
            return (await self.stat(digest)).size
        except BlobUnknown:
            return None

    async def delete(self, digest: Digest) -> None:
        """Remove a blob's content (garbage collection only); raise BlobUnknown."""
        try:
            await self.driver.delete(paths.blob_dir(digest))
        except PathNotFound:
            raise BlobUnknown(f"blob {digest} unknown") from None
