"""The offline switch: an upstream the operator wants served from the cache only."""

from __future__ import annotations

from collections.abc import Sequence

from mirror.digests import Digest
from mirror.registryhttp.client import FetchedManifest, ManifestHead
from mirror.registryhttp.errors import UpstreamUnavailable
from mirror.types import Descriptor
from mirror.upstream.api import BlobStream, Upstream, UpstreamDecorator


class OfflineUpstream(UpstreamDecorator):
    """While `offline` is set, every request fails with UpstreamUnavailable and nothing
    is sent, so the cache answers from what it has."""

    def __init__(self, inner: Upstream, *, offline: bool = False) -> None:
        super().__init__(inner)
        self.offline = offline

    def _check(self) -> None:
        if self.offline:
            raise UpstreamUnavailable(f"upstream {self.name} is offline (cache only)")

    async def head_manifest(self, repo: str, reference: str, accept: Sequence[str]) -> ManifestHead:
        self._check()
        return await self.inner.head_manifest(repo, reference, accept)

    async def get_manifest(
        self, repo: str, reference: str, accept: Sequence[str]
    ) -> FetchedManifest:
        self._check()
        return await self.inner.get_manifest(repo, reference, accept)

    async def head_blob(self, repo: str, digest: Digest) -> int | None:
        self._check()
        return await self.inner.head_blob(repo, digest)

    async def open_blob(self, repo: str, digest: Digest, offset: int = 0) -> BlobStream:
        self._check()
        return await self.inner.open_blob(repo, digest, offset)

    async def list_tags(self, repo: str) -> list[str]:
        self._check()
        return await self.inner.list_tags(repo)

    async def referrers(
        self, repo: str, digest: Digest, artifact_type: str | None
    ) -> list[Descriptor]:
        self._check()
        return await self.inner.referrers(repo, digest, artifact_type)

    async def catalog(self) -> list[str]:
        self._check()
        return await self.inner.catalog()
