"""Blobs of a pull-through repository: the cache first, else one download for everyone.

A blob this upstream's cache already holds (for any of its repositories) is linked here
and served from the store. A stored blob of other origin (pushed to a local repository,
or cached from another upstream) is linked only once this upstream confirms, by a HEAD,
that it serves the blob here: a repository reads only the blobs linked to it. Otherwise
the fill manager downloads it once per digest and streams it to every reader while it is
stored; the blob is linked to this repository, with its origin, once it is committed.
"""

from __future__ import annotations

import functools

from mirror.cache.fills.pump import StallError
from mirror.cache.pullthrough.failures import domain_error
from mirror.cache.pullthrough.source import MirrorSource
from mirror.cache.pullthrough.state import PullThroughState
from mirror.digests import Digest
from mirror.errors import BlobUnknown, RegistryError, Unavailable
from mirror.store.repository import Repository
from mirror.store.view import BlobContent, BlobHead
from mirror.upstream.api import UpstreamError


class PullThroughBlobs:
    def __init__(
        self, local: Repository, source: MirrorSource, remote: str, state: PullThroughState
    ) -> None:
        self.local = local
        # The upstream's prefix: the first component of its cached repositories' names.
        self.origin = local.name.split("/", 1)[0]
        self.upstream = source.upstream
        self.remote = remote
        self.state = state
        self._metrics = state.metrics

    async def get(self, digest: Digest) -> BlobContent:
        store = self.local.blobs.store
        head = await self._cached(digest)
        # No await between this and the fill's start (in fetch): a prefetch either sees
        # the client's download running or has registered its own before the ask.
        self.state.asks.asked(digest)
        if head is not None:
            return BlobContent(
                digest,
                head.size,
                open=lambda start, _end: store.open(digest, start),
                local_path=store.local_path(digest),
            )
        self._metrics.misses.inc("blob")
        try:
            return await self.state.fills.fetch(
                digest,
                functools.partial(self.upstream.open_blob, self.remote, digest),
                on_stored=functools.partial(self.local.blobs.link, digest, origin=self.origin),
            )
        except UpstreamError as exc:
            raise self._failed(exc, digest) from None
        except StallError:
            # Stalled before a byte reached anyone: the upstream (or the disk) hangs.
            raise Unavailable(
                f"blob {digest} is not cached and its download from upstream "
                f"{self.upstream.name} stalled"
            ) from None

    async def prefetch(self, digest: Digest) -> bool:
        """Have the blob cached, as a client's pull would (the same single download);
        True when it was downloaded now, False when it was cached. Raises as `get`."""
        if await self._cached(digest) is not None:
            return False
        self._metrics.misses.inc("blob")
        try:
            await self.state.fills.complete(
                digest,
                functools.partial(self.upstream.open_blob, self.remote, digest),
                on_stored=functools.partial(self.local.blobs.link, digest, origin=self.origin),
            )
        except UpstreamError as exc:
            raise self._failed(exc, digest) from None
        except StallError:
            raise Unavailable(
                f"blob {digest} stalled while downloading from upstream {self.upstream.name}"
            ) from None
        return True

    async def info(self, digest: Digest) -> BlobHead:
        """A cached blob's size, else the upstream's answer to a HEAD (nothing downloaded)."""
        head = await self._cached(digest)
        if head is not None:
            return head
        downloading = self.state.fills.size_of(digest)
        if downloading is not None:
            return BlobHead(digest, downloading)
        try:
            size = await self.upstream.head_blob(self.remote, digest)
        except UpstreamError as exc:
            raise self._failed(exc, digest) from None
        if size is None:  # the upstream would not say: fetch it
            content = await self.get(digest)
            return BlobHead(digest, content.size)
        return BlobHead(digest, size)

    async def _cached(self, digest: Digest) -> BlobHead | None:
        """A stored blob this repository may read (linked here now); None when it is not
        stored. A stored blob of other origin that the upstream does not confirm raises
        the upstream's answer (BlobUnknown for a 404), so it is neither served nor fetched
        (a fill would find it stored and link it)."""
        blobs = self.local.blobs
        try:
            info = await blobs.link_cached(digest, self.origin)
        except BlobUnknown:
            if not await blobs.store.exists(digest):
                return None
            # Stored, but not from this upstream: only its word lets this repository read it.
            try:
                await self.upstream.head_blob(self.remote, digest)
            except UpstreamError as exc:
                raise self._failed(exc, digest) from None
            await blobs.link(digest, origin=self.origin)
            info = await blobs.store.stat(digest)
        self._metrics.hits.inc("blob")
        return BlobHead(digest, info.size)

    def _failed(self, exc: UpstreamError, digest: Digest) -> RegistryError:
        return domain_error(exc, self.upstream.name, f"blob {digest}", blob=True)
