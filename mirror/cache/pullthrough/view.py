"""A repository served from the cache and one upstream (the pull-through rules).

Manifests (`PullThroughManifests`): digests local first and never revalidated; tags
within their freshness TTL from the cache, after it one upstream HEAD and a GET only on
change. Blobs (`PullThroughBlobs`): the cache first, else one download per digest
streamed to every reader. Lists: the upstream's tag list and referrers, the cached ones
when it fails. Any upstream failure falls back to what is cached, with a warning;
nothing cached means 503 (or 429 with the upstream's Retry-After). An upstream 404 never
deletes cached content. Pushes and deletes are refused: a cache is read-only.
"""

from __future__ import annotations

import functools

from mirror.cache.pullthrough.blobs import PullThroughBlobs
from mirror.cache.pullthrough.failures import domain_error, stale_warning
from mirror.cache.pullthrough.manifests import PullThroughManifests
from mirror.cache.pullthrough.source import MirrorSource
from mirror.cache.pullthrough.state import PullThroughState
from mirror.digests import Digest
from mirror.errors import Denied, NameUnknown
from mirror.store.blobs import BlobInfo
from mirror.store.repository import Repository
from mirror.store.uploads import UploadStore
from mirror.store.view import (
    BlobContent,
    BlobHead,
    ManifestHeadResult,
    ManifestResult,
    TagsResult,
)
from mirror.types import Descriptor, Manifest, Reference
from mirror.upstream.api import UpstreamError, UpstreamNotFound


class PullThroughView:
    def __init__(
        self,
        local: Repository,
        source: MirrorSource,
        remote_name: str,
        state: PullThroughState,
    ) -> None:
        self.local = local
        self.name = local.name
        self.upstream = source.upstream
        self.remote = remote_name
        self.state = state
        self._blobs = PullThroughBlobs(local, source, remote_name, state)
        prefetcher = state.prefetcher(source)
        on_fetched = (
            None
            if prefetcher is None
            else functools.partial(prefetcher.manifest, download=self._blobs.prefetch)
        )
        self._manifests = PullThroughManifests(
            local, source, remote_name, state, on_fetched=on_fetched
        )

    async def get_manifest(self, reference: Reference) -> ManifestResult:
        return await self._manifests.get(reference)

    async def head_manifest(self, reference: Reference) -> ManifestHeadResult:
        return await self._manifests.head(reference)

    async def blob(self, digest: Digest) -> BlobContent:
        return await self._blobs.get(digest)

    async def blob_info(self, digest: Digest) -> BlobHead:
        return await self._blobs.info(digest)

    async def prefetch(self, digest: Digest) -> bool:
        """Cache a blob without reading it (sync); True when it was downloaded now."""
        return await self._blobs.prefetch(digest)

    # -- lists -----------------------------------------------------------------------

    async def tags(self) -> TagsResult:
        """The upstream's tag list; the cached tags (with a warning) when it fails."""
        try:
            return TagsResult(await self.upstream.list_tags(self.remote))
        except UpstreamNotFound:
            raise NameUnknown(f"repository {self.remote} unknown at {self.upstream.name}") from None
        except UpstreamError as exc:
            try:
                cached = await self.local.tags.all()
            except NameUnknown:
                raise domain_error(exc, self.upstream.name, "the tag list", blob=False) from None
            self.state.metrics.stale.inc("tags")
            warning = stale_warning(exc, self.upstream.name, f"the tags of {self.name}")
            return TagsResult(cached, warning)

    async def referrers(self, subject: Digest, artifact_type: str | None) -> list[Descriptor]:
        """The upstream's referrers (the cached ones when it fails or has no such API)."""
        try:
            descriptors = await self.upstream.referrers(self.remote, subject, artifact_type)
        except UpstreamError:
            return await self.local.referrers(subject, artifact_type)
        if artifact_type is not None:
            descriptors = [d for d in descriptors if d.artifact_type == artifact_type]
        return descriptors

    # -- writes: not on a cache ------------------------------------------------------

    def _read_only(self) -> Denied:
        return Denied(
            f"repository {self.name} is a cache of {self.upstream.name}; pushes are not accepted"
        )

    async def put_manifest(
        self, reference: Reference, raw: bytes, content_type: str | None
    ) -> Manifest:
        raise self._read_only()

    async def delete_manifest(self, reference: Reference) -> None:
        raise self._read_only()

    async def delete_blob(self, digest: Digest) -> None:
        raise self._read_only()

    def uploads(self) -> UploadStore:
        raise self._read_only()

    async def mount(self, digest: Digest, source: str | None) -> BlobInfo | None:
        raise self._read_only()
