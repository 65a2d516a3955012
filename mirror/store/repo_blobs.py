"""A repository's view of the blob store: only blobs linked to it are visible.

A blob becomes linked to a repository when it is pushed there, mounted from a repository
that has it, or - for a cache of an upstream - fetched from that upstream. A cache
repository may also link a blob that another cache repository of the same upstream
fetched (content is stored once, and every repository of that upstream could fetch it
from there), never one pushed to a local repository or cached from another upstream:
those it would have no right to read.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from mirror.digests import Digest
from mirror.errors import BlobUnknown
from mirror.store import links, paths
from mirror.store.blobs import BlobInfo, BlobStore
from mirror.store.faults import storage_faults


class RepositoryBlobs:
    def __init__(self, name: str, blobs: BlobStore) -> None:
        self.name = name
        self.store = blobs
        self._driver = blobs.driver
        self._tracker = blobs.tracker

    async def is_linked(self, digest: Digest) -> bool:
        return await links.link_exists(self._driver, paths.layer_link(self.name, digest))

    async def stat(self, digest: Digest) -> BlobInfo:
        """Size of a blob linked to this repository; raise BlobUnknown."""
        if not await self.is_linked(digest):
            raise BlobUnknown(f"blob {digest} unknown to repository {self.name}")
        info = await self.store.stat(digest)
        self._tracker.used((digest,))
        return info

    async def open(self, digest: Digest, offset: int = 0) -> AsyncGenerator[bytes, None]:
        """Stream a linked blob from `offset`; raise BlobUnknown / RangeNotSatisfiable."""
        if not await self.is_linked(digest):
            raise BlobUnknown(f"blob {digest} unknown to repository {self.name}")
        return await self.store.open(digest, offset)

    async def link(self, digest: Digest, *, origin: str | None = None) -> None:
        """Make a stored blob readable in this repository (idempotent).

        `origin` names the upstream a cache repository fetched the blob from (a valid
        path component, such as the first component of the cache's repository names); it
        is recorded with the blob so that `link_cached` lets that upstream's other cache
        repositories link it too.
        """
        wanted = [paths.layer_link(self.name, digest)]
        if origin is not None:
            wanted.insert(0, paths.blob_origin(digest, origin))
        with storage_faults():
            for path in wanted:
                if not await links.link_exists(self._driver, path):
                    await links.write_link(self._driver, path, digest)
        self._tracker.used((digest,))
        if origin is not None:
            self._tracker.filled()

    async def link_cached(self, digest: Digest, origin: str) -> BlobInfo:
        """A stored blob for this cache repository of upstream `origin`: linked here
        already, or fetched from `origin` for one of its other cache repositories (then
        linked here as well). Raise BlobUnknown otherwise - for a blob pushed to a local
        repository or cached from another upstream too; the caller may still link it
        after the upstream confirmed it serves that blob here.
        """
        if not await self.is_linked(digest):
            if not await links.link_exists(self._driver, paths.blob_origin(digest, origin)):
                raise BlobUnknown(f"blob {digest} is not cached from {origin}")
            info = await self.store.stat(digest)
            await self.link(digest)
            return info
        info = await self.store.stat(digest)
        self._tracker.used((digest,))
        return info

    async def unlink(self, digest: Digest) -> None:
        """Remove the blob from this repository; raise BlobUnknown when not linked."""
        if not await links.remove(self._driver, paths.layer_link(self.name, digest)):
            raise BlobUnknown(f"blob {digest} unknown to repository {self.name}")

    async def mount(self, digest: Digest, source: RepositoryBlobs) -> BlobInfo | None:
        """Link a blob that is linked to `source`; None when it is not (nothing changes).

        There is no mount from anywhere: that would let a repository read blobs pushed
        to repositories its client may not read.
        """
        if not await source.is_linked(digest):
            return None
        if await self._tracker.claim([digest]):
            return None  # being garbage-collected: the client uploads it instead
        try:
            info = await self.store.stat(digest)
        except BlobUnknown:
            return None
        await self.link(digest)
        return info
