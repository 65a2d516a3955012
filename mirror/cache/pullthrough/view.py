"""A repository served from the cache and one upstream (the pull-through rules).

1. Digests are immutable: served locally when present, never revalidated.
2. Tags are mutable: within the upstream's freshness TTL the local mapping is served with
   no upstream request; after it, one upstream HEAD, and a GET only when the digest
   changed. Concurrent revalidations of a tag coalesce.
3. Blobs are downloaded once per digest and streamed to every reader (`FillManager`).
4. Any upstream failure falls back to what is cached, with a warning; nothing cached
   means 503 (or 429 with the upstream's Retry-After). An upstream 404 never deletes
   cached content; it is remembered briefly (negative cache).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from mirror.cache.pullthrough.state import PullThroughState
from mirror.digests import Digest
from mirror.errors import (
    BlobUnknown,
    Denied,
    ManifestInvalid,
    ManifestUnknown,
    NameUnknown,
    RegistryError,
    Unavailable,
)
from mirror.registryhttp.client import FetchedManifest
from mirror.registryhttp.errors import UpstreamError, UpstreamNotFound
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
from mirror.types import MANIFEST_TYPES, Descriptor, Manifest, Reference
from mirror.upstream.gateway import UpstreamGateway

# Ask for every manifest type so indexes are cached whole and byte-for-byte.
ACCEPT = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
assert set(ACCEPT) == MANIFEST_TYPES

T = TypeVar("T")


class PullThroughView:
    def __init__(
        self,
        local: Repository,
        upstream: UpstreamGateway,
        remote_name: str,
        state: PullThroughState,
    ) -> None:
        self.local = local
        self.name = local.name
        self.upstream = upstream
        self.remote = remote_name
        self.state = state
        self._metrics = state.metrics

    def _read_only(self) -> Denied:
        return Denied(
            f"repository {self.name} is a cache of {self.upstream.name}; pushes are not accepted"
        )

    # -- manifests -------------------------------------------------------------------

    async def get_manifest(self, reference: Reference) -> ManifestResult:
        if reference.digest is not None:
            return ManifestResult(await self._manifest_by_digest(reference.digest))
        assert reference.tag is not None
        return await self._manifest_by_tag(reference.tag)

    async def head_manifest(self, reference: Reference) -> ManifestHeadResult:
        if reference.digest is not None:
            try:
                manifest = await self.local.manifests.get(reference.digest)
            except ManifestUnknown:
                pass
            else:
                self._metrics.hits.inc("manifest")
                return ManifestHeadResult(manifest.descriptor())
            return await self._head_upstream(str(reference.digest), None)
        tag = reference.tag
        assert tag is not None
        local_digest, fresh = await self._tag_state(tag)
        if fresh:
            assert local_digest is not None
            self._metrics.hits.inc("manifest")
            return ManifestHeadResult(await self._local_descriptor(local_digest))
        return await self._head_upstream(tag, local_digest)

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
        fresh = stamp.digest == linked and stamp.fresh(self.upstream.freshness, time.time())
        return linked, fresh

    async def _ask(self, ref: str, fn: Callable[[], Awaitable[T]], *, blob: bool = False) -> T:
        """Ask the upstream about `ref`, minding the negative cache.

        A 404, now or remembered, becomes BlobUnknown / ManifestUnknown (and is
        remembered); any other UpstreamError propagates so the caller can fall back.
        """
        what = f"{'blob' if blob else 'manifest'} {ref}"
        if await self.state.is_negative(self.name, ref):
            unknown = BlobUnknown if blob else ManifestUnknown
            raise unknown(f"{what} not found upstream at {self.upstream.name}")
        try:
            return await fn()
        except UpstreamNotFound as exc:
            await self.state.set_negative(self.name, ref)
            raise self.upstream.to_domain(exc, what, blob=blob) from None

    def _failed(self, exc: UpstreamError, ref: str, *, blob: bool = False) -> RegistryError:
        return self.upstream.to_domain(exc, f"{'blob' if blob else 'manifest'} {ref}", blob=blob)

    async def _head_upstream(self, ref: str, local_digest: Digest | None) -> ManifestHeadResult:
        try:
            head = await self._ask(
                ref,
                lambda: self.state.flights.run(
                    ("head", self.name, ref),
                    lambda: self.upstream.call(
                        "head_manifest",
                        lambda: self.upstream.client.head_manifest(self.remote, ref, ACCEPT),
                    ),
                ),
            )
        except UpstreamError as exc:
            if local_digest is None:
                raise self._failed(exc, ref) from None
            self._metrics.stale.inc("manifest")
            return ManifestHeadResult(
                await self._local_descriptor(local_digest), self.upstream.warning(exc)
            )
        if head.digest is None or head.size is None:
            result = await self.get_manifest(Reference.parse(ref))
            return ManifestHeadResult(result.manifest.descriptor(), result.warning)
        if ":" not in ref:
            await self.state.set_stamp(self.name, ref, head.digest)
            self._metrics.revalidations.inc("same" if head.digest == local_digest else "changed")
        if head.digest == local_digest:
            return ManifestHeadResult(await self._local_descriptor(head.digest))
        return ManifestHeadResult(Descriptor(head.media_type, head.digest, head.size))

    async def _local_descriptor(self, digest: Digest) -> Descriptor:
        return (await self.local.manifests.get(digest)).descriptor()

    async def _manifest_by_digest(self, digest: Digest) -> Manifest:
        try:
            manifest = await self.local.manifests.get(digest)
        except ManifestUnknown:
            pass
        else:
            self._metrics.hits.inc("manifest")
            return manifest
        ref = str(digest)
        try:
            return await self._ask(
                ref,
                lambda: self.state.flights.run(
                    ("manifest", self.name, digest), lambda: self._fetch(ref, digest, None)
                ),
            )
        except UpstreamError as exc:
            raise self._failed(exc, ref) from None

    async def _manifest_by_tag(self, tag: str) -> ManifestResult:
        local_digest, fresh = await self._tag_state(tag)
        if fresh:
            assert local_digest is not None
            try:
                manifest = await self.local.manifests.get(local_digest)
            except ManifestUnknown:
                pass
            else:
                self._metrics.hits.inc("manifest")
                return ManifestResult(manifest)
        try:
            manifest = await self._ask(
                tag,
                lambda: self.state.flights.run(
                    ("tag", self.name, tag), lambda: self._revalidate(tag, local_digest)
                ),
            )
        except UpstreamError as exc:
            if local_digest is None:
                raise self._failed(exc, tag) from None
            self._metrics.stale.inc("manifest")
            manifest = await self.local.manifests.get(local_digest)
            return ManifestResult(manifest, self.upstream.warning(exc))
        return ManifestResult(manifest)

    async def _revalidate(self, tag: str, local_digest: Digest | None) -> Manifest:
        """One HEAD when something is cached (GET only on change); one GET otherwise."""
        if local_digest is not None:
            head = await self.upstream.call(
                "head_manifest",
                lambda: self.upstream.client.head_manifest(self.remote, tag, ACCEPT),
            )
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

    async def _fetch(self, ref: str, expected: Digest | None, tag: str | None) -> Manifest:
        """GET a manifest upstream, check its digest, store it (and point `tag` at it)."""
        if expected is not None:
            try:
                manifest = await self.local.manifests.load(expected)
            except ManifestUnknown:
                pass
            else:  # stored for another repository: link it here without asking upstream
                return await self._store(manifest.raw, manifest.media_type, expected, tag)
        fetched: FetchedManifest = await self.upstream.call(
            "get_manifest",
            lambda: self.upstream.client.get_manifest(self.remote, ref, ACCEPT),
        )
        self._metrics.misses.inc("manifest")
        actual = Digest.of(fetched.raw, expected.algorithm if expected else "sha256")
        claimed = expected or fetched.digest
        if claimed is not None and claimed.algorithm == actual.algorithm and claimed != actual:
            raise Unavailable(
                f"upstream {self.upstream.name} sent manifest {ref} with digest {actual}, "
                f"expected {claimed}"
            )
        return await self._store(fetched.raw, fetched.media_type, actual, tag)

    async def _store(
        self, raw: bytes, media_type: str | None, digest: Digest, tag: str | None
    ) -> Manifest:
        manifest = await self.local.manifests.put(raw, media_type, digest=digest, verify=False)
        if tag is not None:
            await self.local.tags.tag(tag, manifest.digest, history=False)
        return manifest

    # -- blobs -----------------------------------------------------------------------

    async def blob(self, digest: Digest) -> BlobContent:
        blobs = self.local.blobs
        store = blobs.store
        try:
            head = await self._local_blob_info(digest)
        except BlobUnknown:
            pass
        else:
            return BlobContent(
                digest,
                head.size,
                open=lambda start, _end: store.open(digest, start),
                local_path=store.local_path(digest),
            )
        self._metrics.misses.inc("blob")
        try:
            return await self._ask(
                str(digest),
                lambda: self.state.fills.fetch(
                    digest,
                    lambda: self.upstream.call(
                        "get_blob",
                        lambda: self.upstream.client.open_blob(self.remote, digest, verify=False),
                    ),
                    on_stored=lambda: blobs.link(digest),
                ),
                blob=True,
            )
        except UpstreamError as exc:
            raise self._failed(exc, str(digest), blob=True) from None

    async def blob_info(self, digest: Digest) -> BlobHead:
        """A cached blob's size, else the upstream's answer to a HEAD (nothing downloaded)."""
        try:
            return await self._local_blob_info(digest)
        except BlobUnknown:
            pass
        downloading = self.state.fills.size_of(digest)
        if downloading is not None:
            return BlobHead(digest, downloading)
        try:
            size = await self._ask(
                str(digest),
                lambda: self.upstream.call(
                    "head_blob", lambda: self.upstream.client.head_blob(self.remote, digest)
                ),
                blob=True,
            )
        except UpstreamError as exc:
            raise self._failed(exc, str(digest), blob=True) from None
        if size is None:  # the upstream would not say: fetch it
            content = await self.blob(digest)
            return BlobHead(digest, content.size)
        return BlobHead(digest, size)

    async def _local_blob_info(self, digest: Digest) -> BlobHead:
        """A stored blob (linking it here when another repository pulled it); BlobUnknown."""
        blobs = self.local.blobs
        linked = await blobs.is_linked(digest)
        if not linked and not await blobs.store.exists(digest):
            raise BlobUnknown(f"blob {digest} is not cached")
        info = await blobs.store.stat(digest)
        if not linked:
            await blobs.link(digest)
        self._metrics.hits.inc("blob")
        return BlobHead(digest, info.size)

    # -- lists -----------------------------------------------------------------------

    async def tags(self) -> TagsResult:
        """The upstream's tag list; the cached tags (with a warning) when it fails."""
        try:
            tags = await self.state.flights.run(
                ("tags", self.name),
                lambda: self.upstream.call(
                    "list_tags", lambda: self.upstream.client.list_tags(self.remote)
                ),
            )
        except UpstreamNotFound:
            raise NameUnknown(f"repository {self.remote} unknown at {self.upstream.name}") from None
        except UpstreamError as exc:
            try:
                cached = await self.local.tags.all()
            except NameUnknown:
                raise self.upstream.to_domain(exc, "the tag list", blob=False) from None
            self._metrics.stale.inc("tags")
            return TagsResult(cached, self.upstream.warning(exc))
        return TagsResult(tags)

    async def referrers(self, subject: Digest, artifact_type: str | None) -> list[Descriptor]:
        """The upstream's referrers (the cached ones when it fails or has no such API)."""
        try:
            found = await self.upstream.call(
                "referrers",
                lambda: self.upstream.client.get_referrers(self.remote, subject, artifact_type),
            )
            descriptors = [Descriptor.from_json(d, "referrer") for d in found]
        except (UpstreamError, ManifestInvalid):
            return await self.local.referrers(subject, artifact_type)
        if artifact_type is not None:
            descriptors = [d for d in descriptors if d.artifact_type == artifact_type]
        return descriptors

    # -- writes: not on a cache ------------------------------------------------------

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
