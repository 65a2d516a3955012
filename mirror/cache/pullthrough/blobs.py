"""Blobs of a pull-through repository: the cache first, else one download for everyone.

A blob stored for any repository is linked here and served from the store. Otherwise the
fill manager downloads it once per digest and streams it to every reader while it is
stored; the blob is linked to this repository once it is committed.
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
        self.upstream = source.upstream
        self.remote = remote
        self.state = state
        self._metrics = state.metrics

    async def get(self, digest: Digest) -> BlobContent:
        store = self.local.blobs.store
        try:
            head = await self._cached(digest)
        except BlobUnknown:
            pass
        else:
            return BlobContent(
                digest,
                head.size,
                open=functools.partial(store.open, digest),
                local_path=store.local_path(digest),
            )
        self._metrics.misses.inc("blob")
        try:
            return await self.state.fills.fetch(
                digest,
                functools.partial(self.upstream.open_blob, self.remote, digest),
                on_stored=functools.partial(self.local.blobs.link, digest),
            )
        except UpstreamError as exc:
            raise self._failed(exc, digest) from None
        except StallError:
            # Stalled before a byte reached anyone: the upstream (or the disk) hangs.
            raise Unavailable(
                f"blob {digest} is not cached and its download from upstream "
                f"{self.upstream.name} stalled"
            ) from None

    async def info(self, digest: Digest) -> BlobHead:
        """A cached blob's size, else the upstream's answer to a HEAD (nothing downloaded)."""
        try:
            return await self._cached(digest)
        except BlobUnknown:
            pass
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

    async def _cached(self, digest: Digest) -> BlobHead:
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

    def _failed(self, exc: UpstreamError, digest: Digest) -> RegistryError:
        return domain_error(exc, self.upstream.name, f"blob {digest}", blob=True)
