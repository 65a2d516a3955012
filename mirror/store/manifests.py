"""Manifests of one repository: stored byte-for-byte as blobs, linked as revisions."""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from mirror.digests import Digest
from mirror.errors import (
    BlobUnknown,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    SizeInvalid,
)
from mirror.store import links, paths
from mirror.store.blobs import BlobStore
from mirror.store.faults import storage_faults
from mirror.store.listings import RepositoryIndex
from mirror.store.repo_blobs import RepositoryBlobs
from mirror.types import MAX_MANIFEST_SIZE, Manifest


class ManifestCache:
    """Parsed manifests by digest (content-addressed, so never stale), bounded LRU.

    Bounded by count and by the bytes of the manifests it holds (each up to 4 MiB, so a
    count alone would allow gigabytes); one larger than the whole budget is not kept.
    """

    def __init__(self, limit: int = 4096, max_bytes: int = 64 * 1024 * 1024) -> None:
        self._items: OrderedDict[Digest, Manifest] = OrderedDict()
        self._limit = limit
        self._max_bytes = max_bytes
        self.size = 0

    def get(self, digest: Digest) -> Manifest | None:
        item = self._items.get(digest)
        if item is not None:
            self._items.move_to_end(digest)
        return item

    def put(self, manifest: Manifest) -> None:
        if len(manifest.raw) > self._max_bytes:
            return
        old = self._items.pop(manifest.digest, None)
        if old is not None:
            self.size -= len(old.raw)
        self._items[manifest.digest] = manifest
        self.size += len(manifest.raw)
        while len(self._items) > self._limit or self.size > self._max_bytes:
            _, dropped = self._items.popitem(last=False)
            self.size -= len(dropped.raw)


def _foreign(media_type: str) -> bool:
    """Non-distributable layers are not pushed to registries (they carry `urls`)."""
    return "foreign" in media_type or "nondistributable" in media_type


class ManifestStore:
    def __init__(
        self, name: str, blobs: RepositoryBlobs, cache: ManifestCache, index: RepositoryIndex
    ) -> None:
        self.name = name
        self._index = index
        self._repo_blobs = blobs
        self._blobs: BlobStore = blobs.store
        self._driver = blobs.store.driver
        self._cache = cache

    async def exists(self, digest: Digest) -> bool:
        return await links.link_exists(self._driver, paths.revision_link(self.name, digest))

    async def get(self, digest: Digest) -> Manifest:
        """The manifest with `digest` in this repository; raise ManifestUnknown."""
        if not await self.exists(digest):
            raise ManifestUnknown(f"manifest {digest} unknown to repository {self.name}")
        manifest = await self.load(digest)
        self._blobs.tracker.used((digest,))
        return manifest

    async def load(self, digest: Digest) -> Manifest:
        """Read a manifest from the blob store without the repository check.

        Raises ManifestUnknown when no blob has `digest`, or the blob is not a manifest:
        larger than a manifest may be (told by its size, before reading it), or not one.
        """
        cached = self._cache.get(digest)
        if cached is not None:
            return cached
        try:
            raw = await self._blobs.get(digest, MAX_MANIFEST_SIZE)
            manifest = Manifest.parse(raw, digest=digest)
        except BlobUnknown:
            raise ManifestUnknown(f"manifest {digest} unknown") from None
        except (SizeInvalid, ManifestInvalid) as exc:
            raise ManifestUnknown(f"{digest} is not a manifest ({exc.message})") from None
        self._cache.put(manifest)
        return manifest

    async def put(
        self,
        raw: bytes,
        content_type: str | None,
        *,
        digest: Digest | None = None,
        verify: bool = True,
    ) -> Manifest:
        """Validate and store a manifest; with `digest`, the bytes must have it.

        With `verify`, every blob (config, layers) must be linked here and every child of
        an index must be a manifest of this repository, else ManifestBlobUnknown. Raises
        ManifestInvalid / Unsupported for bad content and DigestInvalid for a mismatch.
        """
        actual = Digest.of(raw, digest.algorithm if digest else "sha256")
        if digest is not None and actual != digest:
            raise DigestInvalid(f"manifest digest is {actual}, not {digest}")
        manifest = Manifest.parse(raw, content_type, digest=actual)
        if verify:
            await self._verify_references(manifest)
        # The content first; then, all at once, what points at it (each write is durable
        # on its own, so one round of fsyncs instead of one after another).
        with storage_faults():
            await self._blobs.put(raw, actual)
            manifests = paths.manifests_dir(self.name)
            new_repository = not await links.path_exists(self._driver, manifests)
            revision = paths.revision_link(self.name, actual)
            writes = [links.write_link(self._driver, revision, actual)]
            if manifest.subject is not None:
                path = paths.referrer_link(self.name, manifest.subject.digest, actual)
                writes.append(links.write_link(self._driver, path, actual))
            if new_repository:
                writes.append(self._index.created(self.name))
            await asyncio.gather(*writes)
        self._cache.put(manifest)
        self._blobs.tracker.used((actual,))
        return manifest

    async def _verify_references(self, manifest: Manifest) -> None:
        # Claimed before the checks: a garbage collection running now either sees the
        # claim and keeps these, or has them marked (missing here) or already gone.
        wanted = [child.digest for child in manifest.manifests] + [
            blob.digest for blob in manifest.blobs if not _foreign(blob.media_type)
        ]
        for digest in await self._blobs.tracker.claim(wanted):
            raise ManifestBlobUnknown(
                f"{digest} referenced by the manifest is being garbage-collected",
                detail={"digest": str(digest)},
            )
        for child in manifest.manifests:
            if not await self.exists(child.digest):
                raise ManifestBlobUnknown(
                    f"manifest {child.digest} referenced by the index is unknown",
                    detail={"digest": str(child.digest)},
                )
        for blob in manifest.blobs:
            if _foreign(blob.media_type):
                continue
            try:
                info = await self._repo_blobs.stat(blob.digest)
            except BlobUnknown:
                raise ManifestBlobUnknown(
                    f"blob {blob.digest} unknown to repository {self.name}",
                    detail={"digest": str(blob.digest)},
                ) from None
            if info.size != blob.size:
                raise ManifestInvalid(
                    f"blob {blob.digest} is {info.size} bytes, the manifest says {blob.size}"
                )

    async def delete(self, digest: Digest) -> Manifest:
        """Unlink a manifest revision (its referrer entry too); raise ManifestUnknown."""
        if not await self.exists(digest):
            raise ManifestUnknown(f"manifest {digest} unknown to repository {self.name}")
        manifest = await self.load(digest)  # not `get`: a delete is no use of it
        await links.remove(self._driver, paths.revision_link(self.name, digest))
        if manifest.subject is not None:
            path = paths.referrer_link(self.name, manifest.subject.digest, digest)
            await links.remove(self._driver, path)
        return manifest
