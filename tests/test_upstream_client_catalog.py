"""The upstream's catalog (sync expands repository globs with it)."""

from __future__ import annotations

import httpx
import pytest

from mirror.registryhttp.client import DistributionClient
from mirror.registryhttp.errors import (
    UpstreamAuthError,
    UpstreamContentError,
    UpstreamUnavailable,
)
from mirror.upstream.offline import OfflineUpstream
from mirror.upstream.registry import RegistryUpstream

pytestmark = pytest.mark.anyio


def client_for(handler: httpx.MockTransport) -> DistributionClient:
    return DistributionClient("http://upstream.test", transport=handler)


async def test_catalog_follows_link_pages() -> None:
    pages = {
        "": (["team/b", "library/a"], '</v2/_catalog?n=1000&last=team/b>; rel="next"'),
        "team/b": (["zeta/c"], None),
    }

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v2/_catalog"
        repositories, link = pages[request.url.params.get("last", "")]
        headers = {"Link": link} if link else {}
        return httpx.Response(200, json={"repositories": repositories}, headers=headers)

    client = client_for(httpx.MockTransport(handler))
    try:
        assert await client.catalog() == ["library/a", "team/b", "zeta/c"]
    finally:
        await client.aclose()


async def test_a_refused_or_garbled_catalog() -> None:
    answers = iter([httpx.Response(401), httpx.Response(200, json={"repositories": 3})])
    client = client_for(httpx.MockTransport(lambda request: next(answers)))
    try:
        with pytest.raises(UpstreamAuthError):
            await client.catalog()
        with pytest.raises(UpstreamContentError):
            await client.catalog()
    finally:
        await client.aclose()


async def test_offline_sends_no_catalog_request() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={"repositories": []})

    upstream = OfflineUpstream(
        RegistryUpstream(client_for(httpx.MockTransport(handler))), offline=True
    )
    try:
        with pytest.raises(UpstreamUnavailable):
            await upstream.catalog()
        assert sent == []
    finally:
        await upstream.aclose()
