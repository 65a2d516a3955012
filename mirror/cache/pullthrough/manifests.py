"""Manifests of a pull-through repository: digests local first, tags kept fresh.

1. A digest is immutable: served from the cache when there, never revalidated.
2. A tag within its upstream's freshness TTL is served from the cache with no upstream
   request. After it: one upstream HEAD; a GET only when the digest changed (HEADs are
   free under Docker Hub's pull limits, GETs are not). Concurrent revalidations of one
   tag, and concurrent fetches of one digest, are one.
3. When the upstream fails, or says the tag (or the digest it now names) does not exist,
   a cached tag is served as it is, with a warning; with nothing cached the client gets
   the upstream failure as a domain error. An upstream 404 is remembered (by the
   upstream's negative cache) under what was asked: the tag, or the new digest.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from mirror.cache.pullthrough.failures import domain_error, stale_warning
from mirror.cache.pullthrough.source import MirrorSource
from mirror.cache.pullthrough.state import PullThroughState
from mirror.digests import Digest
from mirror.errors import ManifestInvalid, ManifestUnknown, RegistryError, Unsupported
from mirror.store.repository import Repository
from mirror.store.view import ManifestHeadResult, ManifestResult
from mirror.types import MANIFEST_TYPES, Descriptor, Manifest, Reference
from mirror.upstream.api import UpstreamContentError, UpstreamError, UpstreamNotFound

# Ask for every manifest type so indexes are cached whole and byte-for-byte.
ACCEPT = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
assert set(ACCEPT) == MANIFEST_TYPES


class PullThroughManifests:
    """`on_fetched` is told of every manifest stored from the upstream (prefetch)."""

    def __init__(
        self,
        local: Repository,
        source: MirrorSource,
        remote: str,
        state: PullThroughState,
        *,
        on_fetched: Callable[[Manifest], None] | None = None,
    ) -> None:
        self.local = local
        self._on_fetched = on_fetched
        self.name = local.name
        self.source = source
        self.upstream = source.upstream
        self.remote = remote
        self.state = state
        self._metrics = state.metrics

    async def get(self, reference: Reference) -> ManifestResult:
        if reference.digest is not None:
            return ManifestResult(await self._by_digest(reference.digest))
        assert reference.tag is not None
        return await self._by_tag(reference.tag)

    async def head(self, reference: Reference) -> ManifestHeadResult:
        if reference.digest is not None:
            cached = await self._cached(reference.digest)
            if cached is not None:
                return ManifestHeadResult(cached.descriptor())
            return await self._head_upstream(str(reference.digest), None)
        tag = reference.tag
        assert tag is not None
        local_digest, fresh = await self._tag_state(tag)
        if fresh:
            assert local_digest is not None
            self._metrics.hits.inc("manifest")
            return ManifestHeadResult(await self._descriptor(local_digest))
        return await self._head_upstream(tag, local_digest)

    # -- by digest ---------------------------------------------------------------------

    async def _by_digest(self, digest: Digest) -> Manifest:
        cached = await self._cached(digest)
        if cached is not None:
            return cached
        ref = str(digest)
        try:
            return await self.state.flights.run(
                ("manifest", self.name, digest), self._fetch, ref, digest, None
            )
        except UpstreamError as exc:
            raise self._failed(exc, ref) from None

    # -- by tag ------------------------------------------------------------------------

    async def _by_tag(self, tag: str) -> ManifestResult:
        local_digest, fresh = await self._tag_state(tag)
        if fresh:
            assert local_digest is not None
            cached = await self._cached(local_digest)
            if cached is not None:
                return ManifestResult(cached)
        try:
            manifest = await self.state.flights.run(
                ("tag", self.name, tag), self._revalidate, tag, local_digest
            )
        except UpstreamError as exc:
            if not self._may_serve_stale(exc, local_digest):
                raise self._failed(exc, tag) from None
            assert local_digest is not None
            self._metrics.stale.inc("manifest")
            manifest = await self.local.manifests.get(local_digest)
            warning = stale_warning(exc, self.upstream.name, f"{self.name}:{tag}")
            return ManifestResult(manifest, warning)
        return ManifestResult(manifest)

    async def _tag_state(self, tag: str) -> tuple[Digest | None, bool]:
        """The locally cached digest of `tag`, and whether it is within its freshness TTL.

        A HEAD answered by the upstream records only a stamp (HEADs are free upstream,
        GETs are not); when the client then fetched that digest (containerd resolves by
        HEAD and pulls by digest), the stamp's digest becomes the tag's cached target.
        """
        linked = await self.local.tags.get(tag)
        stamp = await self.state.stamp(self.name, tag)
        if stamp is None:
            return linked, False
        if stamp.digest != linked and await self.local.manifests.exists(stamp.digest):
            await self.local.tags.tag(tag, stamp.digest, history=False)
            linked = stamp.digest
        fresh = stamp.digest == linked and stamp.fresh(self.source.freshness, time.time())
        return linked, fresh

    async def _revalidate(self, tag: str, local_digest: Digest | None) -> Manifest:
        """One HEAD when something is cached (GET only on change); one GET otherwise."""
        if local_digest is not None:
            head = await self.upstream.head_manifest(self.remote, tag, ACCEPT)
            if head.digest == local_digest:
                self._metrics.revalidations.inc("same")
                await self.state.set_stamp(self.name, tag, local_digest)
                self._metrics.hits.inc("manifest")
                return await self.local.manifests.get(local_digest)
            self._metrics.revalidations.inc("changed")
            if head.digest is not None:
                manifest = await self._fetch(str(head.digest), head.digest, tag)
                await self.state.set_stamp(self.name, tag, manifest.digest)
                return manifest
        manifest = await self._fetch(tag, None, tag)
        await self.state.set_stamp(self.name, tag, manifest.digest)
        return manifest

    # -- HEAD --------------------------------------------------------------------------

    async def _head_upstream(self, ref: str, local_digest: Digest | None) -> ManifestHeadResult:
        try:
            head = await self.upstream.head_manifest(self.remote, ref, ACCEPT)
        except UpstreamError as exc:
            if not self._may_serve_stale(exc, local_digest):
                raise self._failed(exc, ref) from None
            assert local_digest is not None
            self._metrics.stale.inc("manifest")
            descriptor = await self._descriptor(local_digest)
            warning = stale_warning(exc, self.upstream.name, f"{self.name}:{ref}")
            return ManifestHeadResult(descriptor, warning)
        if head.digest is None or head.size is None or head.media_type not in MANIFEST_TYPES:
            # The upstream would not say (or said something no client may be told): GET it.
            result = await self.get(Reference.parse(ref))
            return ManifestHeadResult(result.manifest.descriptor(), result.warning)
        if ":" not in ref:  # a tag
            await self.state.set_stamp(self.name, ref, head.digest)
            self._metrics.revalidations.inc("same" if head.digest == local_digest else "changed")
        if head.digest == local_digest:
            return ManifestHeadResult(await self._descriptor(head.digest))
        return ManifestHeadResult(Descriptor(head.media_type, head.digest, head.size))

    # -- fetching and storing ----------------------------------------------------------

    async def _fetch(self, ref: str, expected: Digest | None, tag: str | None) -> Manifest:
        """GET a manifest upstream, check its digest, store it (and point `tag` at it)."""
        if expected is not None:
            try:
                manifest = await self.local.manifests.load(expected)
            except ManifestUnknown:
                pass
            else:  # stored for another repository: link it here without asking upstream
                return await self._store(manifest.raw, manifest.media_type, expected, tag)
        fetched = await self.upstream.get_manifest(self.remote, ref, ACCEPT)
        self._metrics.misses.inc("manifest")
        actual = Digest.of(fetched.raw, expected.algorithm if expected else "sha256")
        claimed = expected or fetched.digest
        if claimed is not None and claimed.algorithm == actual.algorithm and claimed != actual:
            raise UpstreamContentError(
                f"{self.upstream.name}: manifest {ref} has digest {actual}, expected {claimed}"
            )
        try:
            manifest = await self._store(fetched.raw, fetched.media_type, actual, tag)
        except (ManifestInvalid, Unsupported) as exc:
            # The upstream's content, not the client's request, is at fault: this is an
            # upstream failure like any other (stale fallback, else UNAVAILABLE).
            raise UpstreamContentError(
                f"{self.upstream.name}: manifest {ref} is not valid: {exc.message}"
            ) from None
        if self._on_fetched is not None:
            self._on_fetched(manifest)
        return manifest

    async def _store(
        self, raw: bytes, media_type: str | None, digest: Digest, tag: str | None
    ) -> Manifest:
        manifest = await self.local.manifests.put(raw, media_type, digest=digest, verify=False)
        if tag is not None:
            await self.local.tags.tag(tag, manifest.digest, history=False)
        return manifest

    async def _cached(self, digest: Digest) -> Manifest | None:
        """The manifest from the cache (a hit), or None."""
        try:
            manifest = await self.local.manifests.get(digest)
        except ManifestUnknown:
            return None
        self._metrics.hits.inc("manifest")
        return manifest

    async def _descriptor(self, digest: Digest) -> Descriptor:
        return (await self.local.manifests.get(digest)).descriptor()

    def _may_serve_stale(self, exc: UpstreamError, local_digest: Digest | None) -> bool:
        """Whether a cached tag answers when revalidating it failed with `exc`.

        Any failure of the upstream does; so does its saying that the tag, or the digest
        it now names, does not exist (deleted, or not replicated yet), unless the source
        is set to pass such 404s on.
        """
        if local_digest is None:
            return False
        return self.source.serve_missing_tags or not isinstance(exc, UpstreamNotFound)

    def _failed(self, exc: UpstreamError, ref: str) -> RegistryError:
        return domain_error(exc, self.upstream.name, f"manifest {ref}", blob=False)
