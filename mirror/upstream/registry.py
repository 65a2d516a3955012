"""`RegistryUpstream`: the Upstream seam over the distribution API's HTTP client.

The client (`mirror.registryhttp`) does transport, auth, retries and redirects and knows
nothing about caching; this adapter only fixes what the cache wants from it (unverified
blob streams, since the cache verifies what it stores; referrers as descriptors).
"""

from __future__ import annotations

from collections.abc import Sequence

from mirror.digests import Digest
from mirror.errors import ManifestInvalid
from mirror.registryhttp.client import DistributionClient, FetchedManifest, ManifestHead, RateLimit
from mirror.registryhttp.errors import UpstreamContentError
from mirror.types import Descriptor
from mirror.upstream.api import BlobStream


class RegistryUpstream:
    """An Upstream backed by one `DistributionClient`, which it owns (and closes)."""

    def __init__(self, client: DistributionClient) -> None:
        self.client = client
        self.name = client.name

    @property
    def ratelimit(self) -> RateLimit | None:
        return self.client.ratelimit

    async def head_manifest(self, repo: str, reference: str, accept: Sequence[str]) -> ManifestHead:
        return await self.client.head_manifest(repo, reference, accept)

    async def get_manifest(
        self, repo: str, reference: str, accept: Sequence[str]
    ) -> FetchedManifest:
        return await self.client.get_manifest(repo, reference, accept)

    async def head_blob(self, repo: str, digest: Digest) -> int | None:
        return await self.client.head_blob(repo, digest)

    async def open_blob(self, repo: str, digest: Digest, offset: int = 0) -> BlobStream:
        return await self.client.open_blob(repo, digest, offset, verify=False)

    async def list_tags(self, repo: str) -> list[str]:
        return await self.client.list_tags(repo)

    async def referrers(
        self, repo: str, digest: Digest, artifact_type: str | None
    ) -> list[Descriptor]:
        found = await self.client.get_referrers(repo, digest, artifact_type)
        try:
            return [Descriptor.from_json(item, "referrer") for item in found]
        except ManifestInvalid as exc:
            raise UpstreamContentError(
                f"{self.name}: bad referrers index for {digest}: {exc.message}"
            ) from None

    async def catalog(self) -> list[str]:
        return await self.client.catalog()

    async def aclose(self) -> None:
        await self.client.aclose()
