"""DistributionClient's token and Basic auth flow, through a fake registry."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from mirror.registryhttp.auth import basic_credentials
from mirror.registryhttp.client import FetchedManifest
from mirror.registryhttp.errors import UpstreamAuthError
from mirror.types import OCI_INDEX
from tests.support.fakeregistry import (
    ACCEPT,
    MANIFEST,
    MANIFEST_DIGEST,
    REALM,
    REPO,
    SCOPE,
    Clock,
    FakeRegistry,
    opened,
    read_all,
)


@pytest.mark.anyio
async def test_anonymous_token_flow_with_realm_on_another_host() -> None:
    fake = FakeRegistry()
    async with opened(fake.client()) as client:
        fetched = await client.get_manifest(REPO, "latest", ACCEPT)
    assert fetched == FetchedManifest(MANIFEST, OCI_INDEX, MANIFEST_DIGEST)
    first, token, retry = fake.requests
    assert "authorization" not in first.headers
    assert first.headers["accept"] == ", ".join(ACCEPT)
    assert token.url.host == "auth.test"
    assert token.url.params["scope"] == SCOPE
    assert token.url.params["service"] == "registry.test"
    assert "authorization" not in token.headers
    assert retry.headers["authorization"] == "Bearer tok-1"


@pytest.mark.anyio
async def test_credentials_are_sent_to_the_realm_only() -> None:
    fake = FakeRegistry()
    async with opened(fake.client(username="alice", password="s3cret")) as client:
        await client.get_manifest(REPO, "latest", ACCEPT)
    (token,) = fake.to("auth.test")
    assert token.headers["authorization"] == basic_credentials("alice", "s3cret")
    for request in fake.to("registry.test"):
        assert not request.headers.get("authorization", "").startswith("Basic")


@pytest.mark.anyio
async def test_wrong_credentials_fail_at_the_token_endpoint() -> None:
    fake = FakeRegistry()
    async with opened(fake.client(username="alice", password="nope")) as client:
        with pytest.raises(UpstreamAuthError) as caught:
            await client.get_manifest(REPO, "latest", ACCEPT)
    assert caught.value.status == 401
    assert len(fake.to("auth.test")) == 1


@pytest.mark.anyio
async def test_token_is_cached_and_sent_up_front() -> None:
    fake = FakeRegistry()
    async with opened(fake.client()) as client:
        await client.get_manifest(REPO, "latest", ACCEPT)
        before = len(fake.requests)
        await client.head_manifest(REPO, "latest", ACCEPT)
        await read_all(client)
    later = fake.requests[before:]
    assert [r.url.host for r in later] == ["registry.test", "registry.test"]
    assert all(r.headers["authorization"] == "Bearer tok-1" for r in later)


@pytest.mark.anyio
async def test_expired_token_is_fetched_again() -> None:
    fake = FakeRegistry(expires_in=60)
    clock = Clock()
    async with opened(fake.client(clock=clock)) as client:
        await client.head_manifest(REPO, "latest", ACCEPT)
        clock.now += 50
        await client.head_manifest(REPO, "latest", ACCEPT)
        assert len(fake.to("auth.test")) == 1
        clock.now += 10
        await client.head_manifest(REPO, "latest", ACCEPT)
    assert len(fake.to("auth.test")) == 2
    assert fake.requests[-1].headers["authorization"] == "Bearer tok-2"


@pytest.mark.anyio
async def test_token_revoked_by_the_registry_is_replaced_once() -> None:
    fake = FakeRegistry()
    async with opened(fake.client()) as client:
        await client.head_manifest(REPO, "latest", ACCEPT)
        fake.tokens.clear()  # the registry forgets every token it issued
        await client.head_manifest(REPO, "latest", ACCEPT)
    assert len(fake.to("auth.test")) == 2


@pytest.mark.anyio
async def test_401_after_a_fresh_token_is_an_auth_error_without_looping() -> None:
    fake = FakeRegistry()
    fake.override = lambda r: (
        httpx.Response(401, headers={"www-authenticate": f'Bearer realm="{REALM}"'})
        if r.url.host == "registry.test"
        else None
    )
    async with opened(fake.client()) as client:
        with pytest.raises(UpstreamAuthError) as caught:
            await client.get_manifest(REPO, "latest", ACCEPT)
    assert caught.value.status == 401
    assert len(fake.to("registry.test")) == 2
    assert len(fake.to("auth.test")) == 1


@pytest.mark.anyio
async def test_403_is_an_auth_error() -> None:
    fake = FakeRegistry(auth=None)
    fake.override = lambda r: httpx.Response(403)
    async with opened(fake.client()) as client:
        with pytest.raises(UpstreamAuthError) as caught:
            await client.head_manifest(REPO, "latest", ACCEPT)
    assert caught.value.status == 403


@pytest.mark.anyio
async def test_token_endpoint_down_is_an_auth_error() -> None:
    fake = FakeRegistry()

    def down(request: httpx.Request) -> httpx.Response | None:
        if request.url.host == "auth.test":
            raise httpx.ConnectError("connection refused", request=request)
        return None

    fake.override = down
    async with opened(fake.client()) as client:
        with pytest.raises(UpstreamAuthError, match=r"token endpoint auth\.test") as caught:
            await client.get_manifest(REPO, "latest", ACCEPT)
    assert caught.value.status is None
    assert len(fake.to("auth.test")) == 1


@pytest.mark.anyio
async def test_concurrent_cold_requests_fetch_one_token() -> None:
    fake = FakeRegistry()
    async with opened(fake.client()) as client:
        results = await asyncio.gather(
            *(client.get_manifest(REPO, "latest", ACCEPT) for _ in range(8))
        )
    assert {r.raw for r in results} == {MANIFEST}
    assert len(fake.to("auth.test")) == 1


@pytest.mark.anyio
async def test_basic_challenge() -> None:
    fake = FakeRegistry(auth="basic")
    async with opened(fake.client(username="alice", password="s3cret")) as client:
        await client.ping()
        await client.get_manifest(REPO, "latest", ACCEPT)
    assert [r.headers.get("authorization") is None for r in fake.requests] == [
        True,
        False,
        False,
    ]
    async with opened(fake.client()) as anonymous:
        with pytest.raises(UpstreamAuthError, match="requires credentials"):
            await anonymous.ping()


@pytest.mark.anyio
async def test_ping_uses_the_token_flow_without_scope() -> None:
    fake = FakeRegistry()
    async with opened(fake.client()) as client:
        await client.ping()
    (token,) = fake.to("auth.test")
    assert token.url.params.get_list("scope") == []
