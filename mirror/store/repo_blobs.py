"""A repository's view of the blob store: only blobs linked to it are visible."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from mirror.digests import Digest
from mirror.errors import BlobUnknown
from mirror.store import links, paths
from mirror.store.blobs import BlobInfo, BlobStore


class RepositoryBlobs:
    def __init__(self, name: str, blobs: BlobStore) -> None:
        self.name = name
        self.store = blobs
        self._driver = blobs.driver

    async def is_linked(self, digest: Digest) -> bool:
        return await links.link_exists(self._driver, paths.layer_link(self.name, digest))

    async def stat(self, digest: Digest) -> BlobInfo:
        """Size of a blob linked to this repository; raise BlobUnknown."""
        if not await self.is_linked(digest):
            raise BlobUnknown(f"blob {digest} unknown to repository {self.name}")
        return await self.store.stat(digest)

    async def open(self, digest: Digest, offset: int = 0) -> AsyncGenerator[bytes, None]:
        """Stream a linked blob from `offset`; raise BlobUnknown / RangeNotSatisfiable."""
        if not await self.is_linked(digest):
            raise BlobUnknown(f"blob {digest} unknown to repository {self.name}")
        return await self.store.open(digest, offset)

    async def link(self, digest: Digest) -> None:
        """Make a stored blob readable in this repository (idempotent)."""
        path = paths.layer_link(self.name, digest)
        if not await links.link_exists(self._driver, path):
            await links.write_link(self._driver, path, digest)

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
        try:
            info = await self.store.stat(digest)
        except BlobUnknown:
            return None
        await self.link(digest)
        return info
