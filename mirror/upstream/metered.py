"""Upstream metrics: requests by operation, failures by status, breaker state, quota."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

from mirror.digests import Digest
from mirror.metrics import MetricsRegistry
from mirror.registryhttp.client import FetchedManifest, ManifestHead
from mirror.registryhttp.errors import UpstreamError, UpstreamNotFound, UpstreamRateLimited
from mirror.types import Descriptor
from mirror.upstream.api import BlobStream, Upstream, UpstreamDecorator
from mirror.upstream.breaker import STATE_VALUES


class UpstreamMetrics:
    """The metric families of every upstream (labelled by upstream name)."""

    def __init__(self, metrics: MetricsRegistry) -> None:
        self.errors = metrics.counter(
            "mirror_upstream_errors_total", "Failed upstream requests", ("upstream", "status")
        )
        self.requests = metrics.counter(
            "mirror_upstream_requests_total", "Upstream requests by operation", ("upstream", "op")
        )
        self.breaker = metrics.gauge(
            "mirror_upstream_breaker_state",
            "Circuit breaker per upstream: 0 closed, 1 half-open, 2 open",
            ("upstream",),
            mode="livemax",  # the most open circuit among the workers
        )
        self.blob_bytes = metrics.counter(
            "mirror_upstream_blob_bytes_total",
            "Blob bytes received from each upstream (what the cache fetched)",
            ("upstream",),
        )
        self.ratelimit = metrics.gauge(
            "mirror_upstream_ratelimit_remaining",
            "Pulls left in the upstream's rate-limit window (Docker Hub ratelimit-remaining)",
            ("upstream",),
            mode="livemin",
        )

    def breaker_state(self, upstream: str, state: str) -> None:
        self.breaker.set(upstream, value=STATE_VALUES[state])


class MeteredUpstream(UpstreamDecorator):
    """Counts each request that reaches it and each failure (404s are answers, not
    failures), and publishes the quota the upstream reports. Placed inside the breaker
    and the offline switch, it counts only requests that were actually sent."""

    def __init__(self, inner: Upstream, metrics: UpstreamMetrics) -> None:
        super().__init__(inner)
        self.metrics = metrics

    @asynccontextmanager
    async def _counted(self, op: str) -> AsyncIterator[None]:
        self.metrics.requests.inc(self.name, op)
        try:
            yield
        except UpstreamNotFound:
            raise
        except UpstreamRateLimited:
            self.metrics.errors.inc(self.name, "429")
            raise
        except UpstreamError as exc:
            self.metrics.errors.inc(self.name, str(exc.status or "network"))
            raise
        finally:
            limit = self.inner.ratelimit
            if limit is not None and limit.remaining is not None:
                self.metrics.ratelimit.set(self.name, value=float(limit.remaining))

    async def head_manifest(self, repo: str, reference: str, accept: Sequence[str]) -> ManifestHead:
        async with self._counted("head_manifest"):
            return await self.inner.head_manifest(repo, reference, accept)

    async def get_manifest(
        self, repo: str, reference: str, accept: Sequence[str]
    ) -> FetchedManifest:
        async with self._counted("get_manifest"):
            return await self.inner.get_manifest(repo, reference, accept)

    async def head_blob(self, repo: str, digest: Digest) -> int | None:
        async with self._counted("head_blob"):
            return await self.inner.head_blob(repo, digest)

    async def open_blob(self, repo: str, digest: Digest, offset: int = 0) -> BlobStream:
        async with self._counted("get_blob"):
            stream = await self.inner.open_blob(repo, digest, offset)
        return _CountedStream(
            stream, lambda size: self.metrics.blob_bytes.inc(self.name, amount=size)
        )

    async def list_tags(self, repo: str) -> list[str]:
        async with self._counted("list_tags"):
            return await self.inner.list_tags(repo)

    async def referrers(
        self, repo: str, digest: Digest, artifact_type: str | None
    ) -> list[Descriptor]:
        async with self._counted("referrers"):
            return await self.inner.referrers(repo, digest, artifact_type)

    async def catalog(self) -> list[str]:
        async with self._counted("catalog"):
            return await self.inner.catalog()


class _CountedStream:
    """A blob download whose bytes are counted as they arrive."""

    def __init__(self, inner: BlobStream, count: Callable[[int], None]) -> None:
        self.inner = inner
        self.size = inner.size
        self._count = count

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.inner:
            self._count(len(chunk))
            yield chunk

    async def aclose(self) -> None:
        await self.inner.aclose()
