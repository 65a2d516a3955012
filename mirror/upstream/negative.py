"""The negative cache: an upstream 404 is remembered for a while, so a client that keeps
asking for something missing does not cost an upstream request each time.

Entries are `neg:<stored repository name>:<reference>` in the metadata store (the stored
name is `<prefix>/<repository at the upstream>`), with the ttl as their lifetime. The
store is advisory: when it fails the request simply goes upstream. A remembered miss
never deletes cached content; it only answers what would have been asked upstream.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from mirror.coordination.metadata import MetadataStore
from mirror.digests import Digest
from mirror.registryhttp.client import FetchedManifest, ManifestHead
from mirror.registryhttp.errors import UpstreamNotFound
from mirror.upstream.api import BlobStream, Upstream, UpstreamDecorator

log = logging.getLogger("mirror.upstream")


def negative_key(stored_name: str, reference: str) -> str:
    return f"neg:{stored_name}:{reference}"


class NegativeCache(UpstreamDecorator):
    """Manifest and blob lookups answered by a remembered 404 (UpstreamNotFound, nothing
    sent); a new 404 is remembered under the reference that was asked for. Tag lists and
    referrers pass through (a 404 there is not about one reference)."""

    def __init__(
        self, inner: Upstream, metadata: MetadataStore, *, prefix: str, ttl: float = 30.0
    ) -> None:
        super().__init__(inner)
        self.metadata = metadata
        self.prefix = prefix
        self.ttl = ttl

    def _key(self, repo: str, reference: str) -> str:
        return negative_key(f"{self.prefix}/{repo}", reference)

    async def _check(self, key: str, what: str) -> None:
        try:
            remembered = await self.metadata.get(key) is not None
        except Exception:
            log.warning("reading negative cache failed", exc_info=True)
            return
        if remembered:
            raise UpstreamNotFound(f"{what} not found upstream at {self.name} (remembered)")

    async def remember(self, key: str) -> None:
        if self.ttl <= 0:
            return
        try:
            await self.metadata.set(key, b"1", self.ttl)
        except Exception:
            log.warning("writing negative cache failed", exc_info=True)

    async def head_manifest(self, repo: str, reference: str, accept: Sequence[str]) -> ManifestHead:
        key = self._key(repo, reference)
        await self._check(key, f"manifest {reference}")
        try:
            return await self.inner.head_manifest(repo, reference, accept)
        except UpstreamNotFound:
            await self.remember(key)
            raise

    async def get_manifest(
        self, repo: str, reference: str, accept: Sequence[str]
    ) -> FetchedManifest:
        key = self._key(repo, reference)
        await self._check(key, f"manifest {reference}")
        try:
            return await self.inner.get_manifest(repo, reference, accept)
        except UpstreamNotFound:
            await self.remember(key)
            raise

    async def head_blob(self, repo: str, digest: Digest) -> int | None:
        key = self._key(repo, str(digest))
        await self._check(key, f"blob {digest}")
        try:
            return await self.inner.head_blob(repo, digest)
        except UpstreamNotFound:
            await self.remember(key)
            raise

    async def open_blob(self, repo: str, digest: Digest, offset: int = 0) -> BlobStream:
        key = self._key(repo, str(digest))
        await self._check(key, f"blob {digest}")
        try:
            return await self.inner.open_blob(repo, digest, offset)
        except UpstreamNotFound:
            await self.remember(key)
            raise
