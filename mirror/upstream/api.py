"""The Upstream seam: one remote registry, as the pull-through cache asks it.

`RegistryUpstream` (`mirror.upstream.registry`) implements it over the HTTP client; the
decorators of this package implement it too, each around another `Upstream`, each adding
one concern (the way `CheckedDriver` wraps storage drivers):

- `CoalescingUpstream`: concurrent identical manifest and tag-list requests share one;
- `NegativeCache`: an upstream 404 is remembered for a while in the metadata store;
- `OfflineUpstream`: the operator's switch to serve from the cache only;
- `BreakerUpstream`: the circuit breaker stops waiting on a failing upstream;
- `MeteredUpstream`: request, error and rate-limit metrics.

`mirror.upstream.stack.upstream_stack` puts them together in their one right order.

Every failure is an `UpstreamError` (`mirror.registryhttp.errors`, re-exported here):
`UpstreamNotFound` when the upstream says the thing does not exist, another subclass
when it cannot be asked or answered unusably. What a client is told about a failure is
the cache's decision, not the upstream's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from mirror.digests import Digest
from mirror.registryhttp.client import FetchedManifest, ManifestHead, RateLimit
from mirror.registryhttp.errors import (
    UpstreamAuthError,
    UpstreamContentError,
    UpstreamError,
    UpstreamNotFound,
    UpstreamRateLimited,
    UpstreamUnavailable,
)
from mirror.types import Descriptor

__all__ = [
    "BlobStream",
    "FetchedManifest",
    "ManifestHead",
    "RateLimit",
    "Upstream",
    "UpstreamAuthError",
    "UpstreamContentError",
    "UpstreamDecorator",
    "UpstreamError",
    "UpstreamNotFound",
    "UpstreamRateLimited",
    "UpstreamUnavailable",
]


class BlobStream(Protocol):
    """An open blob download: iterate it once, then (or instead) `aclose()` it."""

    size: int | None  # the blob's length, when the upstream said

    def __aiter__(self) -> AsyncIterator[bytes]:
        """The body as it arrives. Raises UpstreamUnavailable when the transfer breaks and
        UpstreamContentError at the end when more or fewer bytes came than announced."""
        ...

    async def aclose(self) -> None:
        """Release the connection. Idempotent; allowed mid-iteration."""
        ...


class Upstream(Protocol):
    """One remote registry. `repo` is the repository name as the upstream knows it."""

    name: str  # the configured upstream name (safe to show to clients)

    @property
    def ratelimit(self) -> RateLimit | None:
        """The pull quota the upstream last reported, or None if it never did."""
        ...

    async def head_manifest(self, repo: str, reference: str, accept: Sequence[str]) -> ManifestHead:
        """Digest, media type and size of a manifest by tag or digest (digest or size
        None when the upstream does not say). Raises UpstreamNotFound on a miss."""
        ...

    async def get_manifest(
        self, repo: str, reference: str, accept: Sequence[str]
    ) -> FetchedManifest:
        """A manifest's exact bytes, checked against the requested digest and against the
        digest header. Raises UpstreamNotFound on a miss, UpstreamContentError when the
        bytes do not match or are too large for a manifest."""
        ...

    async def head_blob(self, repo: str, digest: Digest) -> int | None:
        """A blob's size (None when the upstream does not say); nothing is downloaded.
        Raises UpstreamNotFound on a miss."""
        ...

    async def open_blob(self, repo: str, digest: Digest, offset: int = 0) -> BlobStream:
        """Start downloading a blob from `offset`. Raises before any byte is read
        (UpstreamNotFound on a miss). The bytes are not checked against the digest: the
        caller verifies what it keeps. The caller owns the stream and must close it."""
        ...

    async def list_tags(self, repo: str) -> list[str]:
        """Every tag of `repo`, sorted. Raises UpstreamNotFound for an unknown repository."""
        ...

    async def referrers(
        self, repo: str, digest: Digest, artifact_type: str | None
    ) -> list[Descriptor]:
        """The referrers of `digest` (OCI 1.1). Raises UpstreamNotFound when the upstream
        has no referrers API, UpstreamContentError for a malformed index."""
        ...

    async def catalog(self) -> list[str]:
        """Every repository the upstream lists, sorted (sync expands globs with it).
        Raises UpstreamNotFound or UpstreamAuthError where there is no catalog to read."""
        ...

    async def aclose(self) -> None:
        """Close connections. Idempotent; open blob streams should be closed first."""
        ...


class UpstreamDecorator:
    """Forwards every call to `inner`; a decorator overrides the calls it adds to."""

    def __init__(self, inner: Upstream) -> None:
        self.inner = inner
        self.name = inner.name

    @property
    def ratelimit(self) -> RateLimit | None:
        return self.inner.ratelimit

    async def head_manifest(self, repo: str, reference: str, accept: Sequence[str]) -> ManifestHead:
        return await self.inner.head_manifest(repo, reference, accept)

    async def get_manifest(
        self, repo: str, reference: str, accept: Sequence[str]
    ) -> FetchedManifest:
        return await self.inner.get_manifest(repo, reference, accept)

    async def head_blob(self, repo: str, digest: Digest) -> int | None:
        return await self.inner.head_blob(repo, digest)

    async def open_blob(self, repo: str, digest: Digest, offset: int = 0) -> BlobStream:
        return await self.inner.open_blob(repo, digest, offset)

    async def list_tags(self, repo: str) -> list[str]:
        return await self.inner.list_tags(repo)

    async def referrers(
        self, repo: str, digest: Digest, artifact_type: str | None
    ) -> list[Descriptor]:
        return await self.inner.referrers(repo, digest, artifact_type)

    async def catalog(self) -> list[str]:
        return await self.inner.catalog()

    async def aclose(self) -> None:
        await self.inner.aclose()
