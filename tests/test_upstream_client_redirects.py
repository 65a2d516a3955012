"""Redirects: followed by hand, bounded, and never carrying credentials to another origin."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from mirror.registryhttp.errors import UpstreamAuthError, UpstreamUnavailable
from tests.support.fakeregistry import (
    ACCEPT,
    BLOB,
    BLOB_DIGEST,
    REALM,
    REPO,
    FakeRegistry,
    answering,
    opened,
    read_all,
)


@pytest.mark.anyio
async def test_redirect_to_another_host_drops_authorization() -> None:
    fake = FakeRegistry()
    fake.blob_via_cdn = True
    async with opened(fake.client()) as client:
        assert await read_all(client) == BLOB
    (cdn,) = fake.to("cdn.test")
    assert "authorization" not in cdn.headers
    assert cdn.url.params["sig"] == "abc"
    assert cdn.headers["accept-encoding"] == "identity"
    assert fake.to("registry.test")[-1].headers["authorization"] == "Bearer tok-1"


@pytest.mark.anyio
async def test_redirect_to_another_port_or_scheme_drops_authorization() -> None:
    for target in ["https://registry.test:8443/b", "http://registry.test/b"]:
        fake = FakeRegistry()
        fake.override = redirecting(target, "/b")
        async with opened(fake.client()) as client:
            assert await read_all(client) == BLOB
        (request,) = [r for r in fake.requests if r.url.path == "/b"]
        assert "authorization" not in request.headers
        assert fake.requests[-2].headers["authorization"] == "Bearer tok-1"


@pytest.mark.anyio
async def test_same_origin_redirect_keeps_authorization_and_range() -> None:
    fake = FakeRegistry()
    fake.override = redirecting("/storage/blob", "/storage/blob")
    async with opened(fake.client()) as client:
        assert await read_all(client, offset=5) == BLOB[5:]
    (storage,) = [r for r in fake.requests if r.url.path == "/storage/blob"]
    assert storage.headers["authorization"] == "Bearer tok-1"
    assert storage.headers["range"] == "bytes=5-"


def redirecting(
    location: str, target_path: str
) -> Callable[[httpx.Request], httpx.Response | None]:
    """Authorized blob requests are redirected to `location`; `target_path` serves the blob."""

    def route(request: httpx.Request) -> httpx.Response | None:
        if request.url.path == target_path:
            return FakeRegistry._blob(FakeRegistry(), request)
        if "/blobs/" in request.url.path and "authorization" in request.headers:
            return httpx.Response(302, headers={"location": location})
        return None

    return route


@pytest.mark.anyio
async def test_redirect_loop_is_bounded() -> None:
    fake = FakeRegistry(auth=None)

    def loop(request: httpx.Request) -> httpx.Response:
        other = "cdn.test" if request.url.host == "registry.test" else "registry.test"
        return httpx.Response(302, headers={"location": f"https://{other}{request.url.path}"})

    fake.override = loop
    async with opened(fake.client(retries=3)) as client:
        with pytest.raises(UpstreamUnavailable, match="redirects"):
            await client.open_blob(REPO, BLOB_DIGEST)
    assert len(fake.requests) == 6  # the request and five hops, no retries


@pytest.mark.anyio
async def test_redirect_to_a_strange_scheme_is_unavailable() -> None:
    fake = FakeRegistry(auth=None)
    fake.override = answering(httpx.Response(302, headers={"location": "file:///etc/passwd"}))
    async with opened(fake.client()) as client:
        with pytest.raises(UpstreamUnavailable, match="unsupported URL"):
            await client.open_blob(REPO, BLOB_DIGEST)
    assert len(fake.requests) == 1


@pytest.mark.anyio
async def test_401_from_a_redirect_target_is_not_answered_with_our_credentials() -> None:
    fake = FakeRegistry()
    fake.blob_via_cdn = True

    def cdn_refuses(request: httpx.Request) -> httpx.Response | None:
        if request.url.host == "cdn.test":
            return httpx.Response(401, headers={"www-authenticate": f'Bearer realm="{REALM}"'})
        return None

    async with opened(fake.client()) as client:
        await client.head_manifest(REPO, "latest", ACCEPT)
        fake.override = cdn_refuses
        with pytest.raises(UpstreamAuthError):
            await client.open_blob(REPO, BLOB_DIGEST)
    assert len(fake.to("auth.test")) == 1
    assert len(fake.to("cdn.test")) == 1


@pytest.mark.anyio
async def test_credentials_never_go_to_a_plain_http_realm_of_an_https_registry() -> None:
    fake = FakeRegistry()
    challenge = 'Bearer realm="http://auth.test/token",service="registry.test"'
    fake.override = lambda r: (
        httpx.Response(401, headers={"www-authenticate": challenge})
        if r.url.host == "registry.test"
        else None
    )
    async with opened(fake.client(username="alice", password="s3cret")) as client:
        with pytest.raises(UpstreamAuthError, match="plain-http"):
            await client.ping()
    assert fake.to("auth.test") == []
