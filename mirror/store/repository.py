"""One repository: its blobs, uploads, manifests, tags and referrers."""

from __future__ import annotations

from mirror.digests import Digest
from mirror.errors import ManifestUnknown, Unsupported
from mirror.store import paths
from mirror.store.blobs import BlobStore
from mirror.store.driver import PathNotFound
from mirror.store.listings import DirectoryListings, RepositoryIndex
from mirror.store.manifests import ManifestCache, ManifestStore
from mirror.store.repo_blobs import RepositoryBlobs
from mirror.store.sessions import UploadSessions
from mirror.store.tags import TagStore
from mirror.store.upload_parts import PartUploadStore
from mirror.store.uploads import UploadStore
from mirror.types import Descriptor, Manifest, Reference


class Repository:
    def __init__(
        self,
        name: str,
        blobs: BlobStore,
        *,
        manifest_cache: ManifestCache,
        sessions: UploadSessions,
        delete_enabled: bool,
        listings: DirectoryListings,
        index: RepositoryIndex,
    ) -> None:
        self.name = name
        self.blobs = RepositoryBlobs(name, blobs)
        # Object stores cannot append: their sessions keep each chunk as an object.
        kind = UploadStore if blobs.driver.traits.append else PartUploadStore
        self.uploads = kind(name, self.blobs, sessions)
        self.manifests = ManifestStore(name, self.blobs, manifest_cache, index)
        self.tags = TagStore(name, blobs.driver, listings, sessions.coordinator)
        self._driver = blobs.driver
        self.delete_enabled = delete_enabled

    async def resolve(self, reference: Reference) -> Digest:
        """The manifest digest a tag or digest reference names; raise ManifestUnknown."""
        if reference.digest is not None:
            return reference.digest
        assert reference.tag is not None
        return await self.tags.resolve(reference.tag)

    async def get_manifest(self, reference: Reference) -> Manifest:
        return await self.manifests.get(await self.resolve(reference))

    async def put_manifest(
        self, reference: Reference, raw: bytes, content_type: str | None, *, verify: bool = True
    ) -> Manifest:
        """Store a manifest and, for a tag reference, point the tag at it."""
        manifest = await self.manifests.put(
            raw, content_type, digest=reference.digest, verify=verify
        )
        if reference.tag is not None:
            await self.tags.tag(reference.tag, manifest.digest)
            # A delete of this digest that ran meanwhile may have unlinked the revision
            # before it looked for tags to remove, and missed this one: link it again, so
            # the tag never names a manifest that is not there.
            if not await self.manifests.exists(manifest.digest):
                manifest = await self.manifests.put(
                    raw, content_type, digest=reference.digest, verify=verify
                )
        return manifest

    def _check_delete(self) -> None:
        if not self.delete_enabled:
            raise Unsupported("deletes are disabled (storage.delete.enabled)")

    async def delete_manifest(self, reference: Reference) -> None:
        """Delete a tag, or a manifest by digest together with the tags pointing at it."""
        self._check_delete()
        if reference.tag is not None:
            await self.tags.untag(reference.tag)
            return
        assert reference.digest is not None
        await self.manifests.delete(reference.digest)
        for tag in await self.tags.pointing_at(reference.digest):
            await self.tags.untag_if(tag, reference.digest)

    async def delete_blob(self, digest: Digest) -> None:
        self._check_delete()
        await self.blobs.unlink(digest)

    async def referrers(
        self, subject: Digest, artifact_type: str | None = None
    ) -> list[Descriptor]:
        """Descriptors of the manifests whose `subject` is `subject`, sorted by digest."""
        base = paths.referrers_dir(self.name, subject)
        found: list[Descriptor] = []
        try:
            algorithms = await self._driver.list(base)
        except PathNotFound:
            return found
        for algorithm in algorithms:
            try:
                hexes = await self._driver.list(f"{base}/{algorithm}")
            except PathNotFound:
                continue
            for hex_ in hexes:
                digest = Digest(algorithm, hex_)
                try:
                    manifest = await self.manifests.get(digest)
                except ManifestUnknown:
                    continue
                descriptor = manifest.referrer_descriptor()
                if artifact_type is None or descriptor.artifact_type == artifact_type:
                    found.append(descriptor)
        return found
