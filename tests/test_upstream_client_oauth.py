"""An identity token (OAuth2 refresh token) in the token flow: the token spec's OAuth2
form (POST, grant_type=refresh_token) instead of a GET with Basic credentials."""

from __future__ import annotations

from urllib.parse import parse_qs

import httpx
import pytest

from mirror.registryhttp.auth import CLIENT_ID
from mirror.registryhttp.errors import UpstreamAuthError
from tests.support.fakeregistry import ACCEPT, REPO, SCOPE, Clock, FakeRegistry, opened


class OAuthServer:
    """auth.test's POST form: knows the refresh token `rt-1`, and hands out a new one
    (`rt-2`, ...) with every access token, as token servers that rotate them do."""

    def __init__(self, fake: FakeRegistry) -> None:
        self.fake = fake
        self.valid = "rt-1"
        self.forms: list[dict[str, list[str]]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response | None:
        if request.url.host != "auth.test":
            return None
        if request.method != "POST":
            return httpx.Response(405)
        form = parse_qs(request.content.decode())
        self.forms.append(form)
        if form.get("refresh_token") != [self.valid]:
            return httpx.Response(400, json={"error": "invalid_grant"})
        self.valid = f"rt-{int(self.valid[3:]) + 1}"
        token = f"tok-{len(self.fake.tokens) + 1}"
        self.fake.tokens.add(token)
        return httpx.Response(
            200, json={"access_token": token, "expires_in": 60, "refresh_token": self.valid}
        )


@pytest.mark.anyio
async def test_identity_token_is_traded_for_access_tokens_by_the_oauth_form() -> None:
    fake = FakeRegistry(expires_in=60)
    server = OAuthServer(fake)
    fake.override = server
    clock = Clock()
    options = {"username": "alice", "password": "", "identity_token": "rt-1", "clock": clock}
    async with opened(fake.client(**options)) as client:
        await client.get_manifest(REPO, "latest", ACCEPT)
        clock.now += 120  # the access token has expired: the rotated refresh token is used
        await client.get_manifest(REPO, "latest", ACCEPT)
    first, second = server.forms
    assert first == {
        "grant_type": ["refresh_token"],
        "refresh_token": ["rt-1"],
        "client_id": [CLIENT_ID],
        "service": ["registry.test"],
        "scope": [SCOPE],
    }
    assert second["refresh_token"] == ["rt-2"]
    for request in fake.to("auth.test"):
        assert request.method == "POST" and "authorization" not in request.headers
    for request in fake.to("registry.test"):
        assert not request.headers.get("authorization", "").startswith("Basic")


@pytest.mark.anyio
async def test_a_refused_identity_token_is_an_auth_error() -> None:
    fake = FakeRegistry()
    fake.override = OAuthServer(fake)
    async with opened(fake.client(identity_token="stale")) as client:
        with pytest.raises(UpstreamAuthError) as caught:
            await client.get_manifest(REPO, "latest", ACCEPT)
    assert caught.value.status == 400


@pytest.mark.anyio
async def test_an_identity_token_never_goes_to_a_plain_http_realm() -> None:
    fake = FakeRegistry()
    plain = 'Bearer realm="http://auth.test/token",service="registry.test"'

    def challenge(request: httpx.Request) -> httpx.Response | None:
        if request.url.host == "registry.test":
            return httpx.Response(401, headers={"www-authenticate": plain})
        return None

    fake.override = challenge
    async with opened(fake.client(identity_token="rt-1")) as client:
        with pytest.raises(UpstreamAuthError, match="plain-http token realm"):
            await client.get_manifest(REPO, "latest", ACCEPT)
    assert fake.to("auth.test") == []
