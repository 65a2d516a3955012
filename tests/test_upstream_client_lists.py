"""Tag lists and the rate-limit headers, through DistributionClient."""

from __future__ import annotations

import httpx
import pytest

from mirror.registryhttp.client import DistributionClient, RateLimit
from mirror.registryhttp.errors import UpstreamContentError, UpstreamRateLimited
from tests.support.fakeregistry import ACCEPT, REPO, FakeRegistry, answering, opened


@pytest.mark.anyio
async def test_list_tags_follows_link_pages() -> None:
    pages = {
        "": (["b", "a"], '</v2/library/app/tags/list?n=1000&last=b>; rel="next"'),
        "b": (["c"], None),
    }
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v2/library/app/tags/list"
        last = request.url.params.get("last", "")
        seen.append(last)
        tags, link = pages[last]
        headers = {"Link": link} if link else {}
        return httpx.Response(200, json={"name": "library/app", "tags": tags}, headers=headers)

    client = DistributionClient("http://upstream.test", transport=httpx.MockTransport(handler))
    try:
        assert await client.list_tags("library/app") == ["a", "b", "c"]
        assert seen == ["", "b"]
    finally:
        await client.aclose()


@pytest.mark.anyio
async def test_list_tags_rejects_garbage() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"tags": [1, 2]})

    client = DistributionClient("http://upstream.test", transport=httpx.MockTransport(handler))
    try:
        with pytest.raises(UpstreamContentError):
            await client.list_tags("x")
    finally:
        await client.aclose()


@pytest.mark.anyio
async def test_ratelimit_headers_are_parsed() -> None:
    fake = FakeRegistry(auth=None)
    async with opened(fake.client()) as client:
        assert client.ratelimit is None
        await client.head_manifest(REPO, "latest", ACCEPT)
        assert client.ratelimit is None
        fake.headers = {"ratelimit-limit": "100;w=21600", "ratelimit-remaining": "76;w=21600"}
        await client.head_manifest(REPO, "latest", ACCEPT)
        assert client.ratelimit == RateLimit(100, 76, 21600)
        fake.headers = {"ratelimit-limit": "200, 200;w=3600"}
        await client.ping()
        assert client.ratelimit == RateLimit(200, None, 3600)
        fake.headers = {"ratelimit-limit": "lots", "ratelimit-remaining": "1"}
        await client.ping()
        assert client.ratelimit == RateLimit(200, None, 3600)
        fake.override = answering(
            httpx.Response(
                429, headers={"ratelimit-limit": "100;w=21600", "ratelimit-remaining": "0"}
            )
        )
        with pytest.raises(UpstreamRateLimited):
            await client.head_manifest(REPO, "latest", ACCEPT)
        assert client.ratelimit == RateLimit(100, 0, 21600)
