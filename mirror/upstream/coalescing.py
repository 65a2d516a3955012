"""Coalescing: concurrent identical manifest and tag-list requests go upstream once.

Blob downloads are coalesced by the fill manager (one download per digest, streamed to
every reader), so blobs pass through here.
"""

from __future__ import annotations

from collections.abc import Sequence

from mirror.coordination.singleflight import SingleFlight
from mirror.registryhttp.client import FetchedManifest, ManifestHead
from mirror.upstream.api import Upstream, UpstreamDecorator


class CoalescingUpstream(UpstreamDecorator):
    """The first caller's request is shared by every identical one made while it runs:
    they all get its result or its exception. A caller that goes away does not cancel
    the request for the others."""

    def __init__(self, inner: Upstream) -> None:
        super().__init__(inner)
        self.flights = SingleFlight()

    async def head_manifest(self, repo: str, reference: str, accept: Sequence[str]) -> ManifestHead:
        key = ("head", repo, reference, tuple(accept))
        return await self.flights.run(key, self.inner.head_manifest, repo, reference, accept)

    async def get_manifest(
        self, repo: str, reference: str, accept: Sequence[str]
    ) -> FetchedManifest:
        key = ("get", repo, reference, tuple(accept))
        return await self.flights.run(key, self.inner.get_manifest, repo, reference, accept)

    async def list_tags(self, repo: str) -> list[str]:
        return await self.flights.run(("tags", repo), self.inner.list_tags, repo)
