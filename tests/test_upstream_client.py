"""DistributionClient through httpx.MockTransport (faults) and against real loopback servers."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from mirror.digests import Digest
from mirror.registryhttp.auth import basic_credentials
from mirror.registryhttp.client import (
    MANIFEST_BODY_LIMIT,
    DistributionClient,
    FetchedManifest,
    ManifestHead,
    RateLimit,
)
from mirror.registryhttp.errors import (
    UpstreamAuthError,
    UpstreamContentError,
    UpstreamError,
    UpstreamNotFound,
    UpstreamRateLimited,
    UpstreamUnavailable,
)
from mirror.types import DOCKER_MANIFEST, MAX_MANIFEST_SIZE, OCI_INDEX, OCI_MANIFEST

METRICS = "https://registry.test"
REALM = "https://auth.test/token"
REPO = "library/alpine"
SCOPE = f"repository:{REPO}:pull"
ACCEPT = [OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST]
MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}).encode()
MANIFEST_DIGEST = Digest.of(MANIFEST)
BLOB = os.urandom(300_000)
BLOB_DIGEST = Digest.of(BLOB)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


Answer = httpx.Response | None


class FakeRegistry:
    """A registry (registry.test) with a token server (auth.test) and a CDN (cdn.test).

    `auth` is "bearer", "basic" or None. `override` may answer any request first (return
    None to fall through). Every request is recorded.
    """

    def __init__(self, auth: str | None = "bearer", *, expires_in: int = 300) -> None:
        self.auth = auth
        self.expires_in = expires_in
        self.requests: list[httpx.Request] = []
        self.tokens: set[str] = set()
        self.users = {"alice": "s3cret"}
        self.override: Callable[[httpx.Request], httpx.Response | None] | None = None
        self.blob_via_cdn = False
        self.headers: dict[str, str] = {}

    def to(self, host: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.host == host]

    def client(self, **options: Any) -> DistributionClient:
        options.setdefault("backoff", 0)
        return DistributionClient(METRICS, transport=httpx.MockTransport(self), **options)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        return streamed(self._answer(request))

    def _answer(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.override is not None:
            answer = self.override(request)
            if answer is not None:
                return answer
        if request.url.host == "auth.test":
            return self._token(request)
        if request.url.host == "cdn.test":
            return self._blob(request)
        denied = self._check(request)
        if denied is not None:
            return denied
        path = request.url.path
        if path == "/v2/":
            return httpx.Response(200, json={}, headers=self.headers)
        if path == f"/v2/{REPO}/manifests/latest" or path.endswith(str(MANIFEST_DIGEST)):
            headers = {
                "content-type": f"{OCI_INDEX}; charset=utf-8",
                "docker-content-digest": str(MANIFEST_DIGEST),
                **self.headers,
            }
            body = b"" if request.method == "HEAD" else MANIFEST
            headers["content-length"] = str(len(MANIFEST))
            return httpx.Response(200, headers=headers, content=body)
        if path == f"/v2/{REPO}/blobs/{BLOB_DIGEST}":
            if self.blob_via_cdn:
                location = f"https://cdn.test/blobs/{BLOB_DIGEST.hex}?sig=abc"
                return httpx.Response(307, headers={"location": location})
            return self._blob(request)
        error = {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]}
        return httpx.Response(404, json=error)

    def _check(self, request: httpx.Request) -> httpx.Response | None:
        given = request.headers.get("authorization")
        if self.auth == "bearer":
            if given and given.removeprefix("Bearer ") in self.tokens:
                return None
            scope = "" if request.url.path == "/v2/" else f' ,scope="{SCOPE}"'
            challenge = f'Bearer realm="{REALM}",service="registry.test"{scope}'
            return httpx.Response(401, headers={"www-authenticate": challenge})
        if self.auth == "basic":
            if given == basic_credentials("alice", "s3cret"):
                return None
            return httpx.Response(401, headers={"www-authenticate": 'Basic realm="reg"'})
        return None

    def _token(self, request: httpx.Request) -> httpx.Response:
        given = request.headers.get("authorization")
        if given is not None and given != basic_credentials("alice", "s3cret"):
            return httpx.Response(401)
        token = f"tok-{len(self.tokens) + 1}"
        self.tokens.add(token)
        return httpx.Response(200, json={"token": token, "expires_in": self.expires_in})

    def _blob(self, request: httpx.Request) -> httpx.Response:
        start = 0
        if "range" in request.headers:
            start = int(request.headers["range"].removeprefix("bytes=").rstrip("-"))
            end = len(BLOB) - 1
            return httpx.Response(
                206,
                headers={"content-range": f"bytes {start}-{end}/{len(BLOB)}"},
                content=BLOB[start:],
            )
        return httpx.Response(200, content=BLOB)


def streamed(response: httpx.Response) -> httpx.Response:
    """A fresh copy whose body arrives as a stream, as from a real connection.

    httpx loads `Response(content=...)` eagerly, which no real transport does; the client
    reads blob bodies raw, so tests must hand it streams.
    """
    if not isinstance(response.stream, httpx.ByteStream):
        return response
    raw = b"".join(response.stream)
    return httpx.Response(
        response.status_code, headers=response.headers, stream=httpx.ByteStream(raw)
    )


@asynccontextmanager
async def opened(client: DistributionClient) -> AsyncIterator[DistributionClient]:
    try:
        yield client
    finally:
        await client.aclose()


async def read_all(client: DistributionClient, offset: int = 0, **kwargs: Any) -> bytes:
    async with await client.open_blob(REPO, BLOB_DIGEST, offset, **kwargs) as blob:
        return b"".join([chunk async for chunk in blob])


# --- the token flow -------------------------------------------------------------------------


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


# --- status mapping and retries -------------------------------------------------------------


def answering(*responses: httpx.Response) -> Callable[[httpx.Request], httpx.Response]:
    """Answer registry requests with `responses` in turn, repeating the last one."""
    queue = list(responses)

    def answer(request: httpx.Request) -> httpx.Response:
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return answer


@pytest.mark.anyio
async def test_404_is_not_found_with_the_registry_error_code() -> None:
    fake = FakeRegistry(auth=None)
    async with opened(fake.client()) as client:
        with pytest.raises(UpstreamNotFound, match="MANIFEST_UNKNOWN: manifest unknown") as caught:
            await client.get_manifest(REPO, "nope", ACCEPT)
        with pytest.raises(UpstreamNotFound):
            await client.head_manifest(REPO, "nope", ACCEPT)
        with pytest.raises(UpstreamNotFound):
            await client.open_blob(REPO, Digest.of(b"other"))
    assert caught.value.status == 404
    assert len(fake.requests) == 3


@pytest.mark.anyio
async def test_429_is_rate_limited_with_retry_after_and_not_retried() -> None:
    fake = FakeRegistry(auth=None)
    fake.override = answering(httpx.Response(429, headers={"retry-after": "30"}))
    async with opened(fake.client(retries=3)) as client:
        with pytest.raises(UpstreamRateLimited) as caught:
            await client.get_manifest(REPO, "latest", ACCEPT)
    assert caught.value.retry_after == "30"
    assert caught.value.status == 429
    assert len(fake.requests) == 1


@pytest.mark.anyio
async def test_500_is_unavailable_and_not_retried() -> None:
    fake = FakeRegistry(auth=None)
    fake.override = answering(httpx.Response(500))
    async with opened(fake.client(retries=3)) as client:
        with pytest.raises(UpstreamUnavailable) as caught:
            await client.head_manifest(REPO, "latest", ACCEPT)
    assert caught.value.status == 500
    assert len(fake.requests) == 1


@pytest.mark.anyio
@pytest.mark.parametrize("status", [502, 503, 504])
async def test_gateway_errors_are_retried_a_bounded_number_of_times(status: int) -> None:
    fake = FakeRegistry(auth=None)
    fake.override = answering(httpx.Response(status, headers={"retry-after": "5"}))
    async with opened(fake.client(retries=3)) as client:
        with pytest.raises(UpstreamUnavailable) as caught:
            await client.get_manifest(REPO, "latest", ACCEPT)
    assert type(caught.value) is UpstreamUnavailable
    assert caught.value.status == status
    assert caught.value.retry_after == "5"
    assert len(fake.requests) == 4


@pytest.mark.anyio
async def test_retry_recovers_and_zero_retries_means_one_try() -> None:
    fake = FakeRegistry(auth=None)
    fake.override = lambda r: httpx.Response(503) if len(fake.requests) < 3 else None
    async with opened(fake.client(retries=2)) as client:
        assert (await client.get_manifest(REPO, "latest", ACCEPT)).raw == MANIFEST
    assert len(fake.requests) == 3

    fake = FakeRegistry(auth=None)
    fake.override = answering(httpx.Response(503))
    async with opened(fake.client(retries=0)) as client:
        with pytest.raises(UpstreamUnavailable):
            await client.ping()
    assert len(fake.requests) == 1


@pytest.mark.anyio
async def test_retries_back_off_exponentially() -> None:
    fake = FakeRegistry(auth=None)
    fake.override = answering(httpx.Response(502))
    async with opened(fake.client(retries=3, backoff=0.02)) as client:
        started = time.monotonic()
        with pytest.raises(UpstreamUnavailable):
            await client.ping()
    # Delays are 0.02 * (1, 2, 4) with jitter in [0.5, 1]: at least 0.07 s in all.
    assert time.monotonic() - started >= 0.07
    assert len(fake.requests) == 4


@pytest.mark.anyio
@pytest.mark.parametrize(
    "fault",
    [httpx.ConnectError, httpx.ConnectTimeout, httpx.ReadTimeout, httpx.RemoteProtocolError],
)
async def test_transport_faults_are_retried_then_unavailable(fault: type[httpx.HTTPError]) -> None:
    fake = FakeRegistry(auth=None)

    def fail(request: httpx.Request) -> httpx.Response:
        raise fault("boom", request=request)  # type: ignore[call-arg]

    fake.override = fail
    async with opened(fake.client(retries=2)) as client:
        with pytest.raises(UpstreamUnavailable, match=fault.__name__) as caught:
            await client.head_manifest(REPO, "latest", ACCEPT)
    assert caught.value.status is None
    assert isinstance(caught.value.__cause__, fault)
    assert len(fake.requests) == 3


@pytest.mark.anyio
async def test_unexpected_statuses_are_unavailable_and_4xx_never_retried() -> None:
    for status in [400, 405, 416, 304]:
        fake = FakeRegistry(auth=None)
        fake.override = answering(httpx.Response(status))
        async with opened(fake.client(retries=3)) as client:
            with pytest.raises(UpstreamUnavailable) as caught:
                await client.get_manifest(REPO, "latest", ACCEPT)
        assert caught.value.status == status
        assert len(fake.requests) == 1


@pytest.mark.anyio
async def test_connection_refused_on_a_real_socket() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on `port` now.
    async with opened(
        DistributionClient(f"http://127.0.0.1:{port}", retries=1, backoff=0)
    ) as client:
        with pytest.raises(UpstreamUnavailable, match="ConnectError"):
            await client.ping()


def test_base_url_must_be_http() -> None:
    for bad in ["ftp://host", "registry.test", "https://"]:
        with pytest.raises(ValueError, match="http"):
            DistributionClient(bad)


def test_error_classes_form_one_hierarchy() -> None:
    for cls in [UpstreamNotFound, UpstreamRateLimited, UpstreamAuthError, UpstreamUnavailable]:
        assert issubclass(cls, UpstreamError)
    assert issubclass(UpstreamContentError, UpstreamError)
    error = UpstreamRateLimited("slow down", retry_after="3")
    assert (error.message, error.status, error.retry_after) == ("slow down", 429, "3")


# --- redirects ------------------------------------------------------------------------------


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


# --- manifests ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_head_manifest_parses_digest_type_and_size() -> None:
    fake = FakeRegistry(auth=None)
    async with opened(fake.client()) as client:
        head = await client.head_manifest(REPO, "latest", ACCEPT)
        assert head == ManifestHead(MANIFEST_DIGEST, OCI_INDEX, len(MANIFEST))
        assert fake.requests[-1].method == "HEAD"
        for value in ["", "sha256:xyz", "md5:abc", " "]:
            fake.override = answering(httpx.Response(200, headers={"docker-content-digest": value}))
            head = await client.head_manifest(REPO, "latest", ())
            assert head == ManifestHead(None, "", None)
        assert fake.requests[-1].headers["accept"] == "*/*"  # httpx's default


@pytest.mark.anyio
async def test_get_manifest_by_digest_verifies_the_bytes() -> None:
    fake = FakeRegistry(auth=None)
    async with opened(fake.client()) as client:
        fetched = await client.get_manifest(REPO, str(MANIFEST_DIGEST), ACCEPT)
        assert fetched.raw == MANIFEST
        tampered = MANIFEST.replace(b"[]", b"[ ]")
        fake.override = answering(
            httpx.Response(200, content=tampered, headers={"content-type": OCI_INDEX})
        )
        with pytest.raises(UpstreamContentError, match="does not match"):
            await client.get_manifest(REPO, str(MANIFEST_DIGEST), ACCEPT)
        # A tag has nothing to check against but the header; without one, bytes pass.
        assert (await client.get_manifest(REPO, "latest", ACCEPT)).digest is None


@pytest.mark.anyio
async def test_get_manifest_rejects_a_body_that_contradicts_its_digest_header() -> None:
    fake = FakeRegistry(auth=None)
    other = Digest.of(b"something else")
    fake.override = answering(
        httpx.Response(200, content=MANIFEST, headers={"docker-content-digest": str(other)})
    )
    async with opened(fake.client(retries=2)) as client:
        with pytest.raises(UpstreamContentError, match=str(other)):
            await client.get_manifest(REPO, "latest", ACCEPT)
    assert len(fake.requests) == 1


@pytest.mark.anyio
async def test_get_manifest_caps_the_body() -> None:
    fake = FakeRegistry(auth=None)
    at_limit = b"x" * MANIFEST_BODY_LIMIT
    too_big = at_limit + b"x"
    async with opened(fake.client()) as client:
        fake.override = answering(httpx.Response(200, content=at_limit))
        assert len((await client.get_manifest(REPO, "latest", ACCEPT)).raw) == MANIFEST_BODY_LIMIT
        assert MANIFEST_BODY_LIMIT > MAX_MANIFEST_SIZE
        # Declared too large: refused before reading.
        fake.override = answering(httpx.Response(200, content=too_big))
        with pytest.raises(UpstreamContentError, match="too large"):
            await client.get_manifest(REPO, "latest", ACCEPT)

        # Chunked (no Content-Length) and compressed: refused while reading.
        async def endless() -> AsyncIterator[bytes]:
            for _ in range(100):
                yield b"y" * 1024 * 1024

        fake.override = answering(httpx.Response(200, content=endless()))
        with pytest.raises(UpstreamContentError, match="too large"):
            await client.get_manifest(REPO, "latest", ACCEPT)
        squeezed = gzip.compress(too_big)
        fake.override = answering(
            httpx.Response(200, content=squeezed, headers={"content-encoding": "gzip"})
        )
        with pytest.raises(UpstreamContentError, match="too large"):
            await client.get_manifest(REPO, "latest", ACCEPT)


@pytest.mark.anyio
async def test_manifest_body_broken_mid_way_is_retried() -> None:
    fake = FakeRegistry(auth=None)
    calls = 0

    def flaky(request: httpx.Request) -> httpx.Response | None:
        nonlocal calls
        calls += 1
        if calls == 1:
            return httpx.Response(200, stream=BreakingStream(MANIFEST[:10]))
        return None

    fake.override = flaky
    async with opened(fake.client()) as client:
        assert (await client.get_manifest(REPO, "latest", ACCEPT)).raw == MANIFEST
    assert calls == 2


# --- blobs ----------------------------------------------------------------------------------


class BreakingStream(httpx.AsyncByteStream):
    """Yields `data`, then fails as a dropped connection would."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.data
        raise httpx.ReadError("connection reset by peer")


@pytest.mark.anyio
async def test_blob_streams_raw_bytes_with_size() -> None:
    fake = FakeRegistry(auth=None)
    async with opened(fake.client(blob_chunk_size=100_000)) as client:
        blob = await client.open_blob(REPO, BLOB_DIGEST)
        assert (blob.size, blob.length, blob.status, blob.offset) == (len(BLOB), len(BLOB), 200, 0)
        chunks = [chunk async for chunk in blob]
        await blob.aclose()
        await blob.aclose()
    assert b"".join(chunks) == BLOB
    assert [len(c) for c in chunks] == [100_000, 100_000, 100_000]
    with pytest.raises(RuntimeError, match="once"):
        blob.__aiter__()


@pytest.mark.anyio
async def test_blob_content_encoding_is_not_decoded() -> None:
    stored = gzip.compress(b"a layer tarball" * 1000)
    digest = Digest.of(stored)
    fake = FakeRegistry(auth=None)
    fake.override = answering(
        httpx.Response(200, content=stored, headers={"content-encoding": "gzip"})
    )
    async with opened(fake.client()) as client, await client.open_blob(REPO, digest) as blob:
        assert b"".join([c async for c in blob]) == stored
    assert fake.requests[0].headers["accept-encoding"] == "identity"


@pytest.mark.anyio
async def test_disconnect_mid_body_is_unavailable_and_not_retried() -> None:
    fake = FakeRegistry(auth=None)
    fake.override = answering(
        httpx.Response(
            200, headers={"content-length": str(len(BLOB))}, stream=BreakingStream(BLOB[:1000])
        )
    )
    async with opened(fake.client(retries=3, blob_chunk_size=500)) as client:
        blob = await client.open_blob(REPO, BLOB_DIGEST)
        got = bytearray()
        with pytest.raises(UpstreamUnavailable, match="after 1000 bytes"):
            async for chunk in blob:
                got += chunk
        await blob.aclose()
    assert got == BLOB[:1000]
    assert len(fake.requests) == 1


@pytest.mark.anyio
async def test_blob_with_wrong_content_is_a_content_error_at_the_end() -> None:
    fake = FakeRegistry(auth=None)
    corrupt = bytes([BLOB[0] ^ 1]) + BLOB[1:]
    fake.override = answering(httpx.Response(200, content=corrupt))
    async with opened(fake.client()) as client:
        with pytest.raises(UpstreamContentError, match="hashes to"):
            await read_all(client)
        assert await read_all(client, verify=False) == corrupt


@pytest.mark.anyio
async def test_blob_shorter_than_announced_is_a_content_error() -> None:
    fake = FakeRegistry(auth=None)
    fake.override = answering(
        httpx.Response(200, headers={"content-length": str(len(BLOB))}, content=BLOB[:-1])
    )
    async with opened(fake.client()) as client:
        with pytest.raises(UpstreamContentError, match="expected 300000"):
            await read_all(client, verify=False)


@pytest.mark.anyio
async def test_blob_range_requires_206() -> None:
    fake = FakeRegistry(auth=None)
    async with opened(fake.client()) as client:
        blob = await client.open_blob(REPO, BLOB_DIGEST, 1000)
        async with blob:
            assert b"".join([c async for c in blob]) == BLOB[1000:]
        assert (blob.size, blob.length, blob.status, blob.offset) == (
            len(BLOB),
            len(BLOB) - 1000,
            206,
            1000,
        )
        assert fake.requests[-1].headers["range"] == "bytes=1000-"
        with pytest.raises(ValueError, match="negative"):
            await client.open_blob(REPO, BLOB_DIGEST, -1)

        cases = [
            httpx.Response(200, content=BLOB),  # Range ignored
            httpx.Response(206, headers={"content-range": "bytes 0-99/300000"}, content=b"x"),
            httpx.Response(206, headers={"content-range": "bytes */300000"}, content=b""),
            httpx.Response(206, content=b"x"),
        ]
        for response in cases:
            fake.override = answering(response)
            with pytest.raises(UpstreamUnavailable, match=r"status 200|Content-Range"):
                await client.open_blob(REPO, BLOB_DIGEST, 1000)

        fake.override = answering(
            httpx.Response(206, headers={"content-range": "bytes 5-9/*"}, content=BLOB[5:10])
        )
        async with await client.open_blob(REPO, BLOB_DIGEST, 5) as blob:
            assert (blob.size, blob.length) == (None, 5)
            assert b"".join([c async for c in blob]) == BLOB[5:10]

        fake.override = answering(httpx.Response(206, content=BLOB))
        with pytest.raises(UpstreamUnavailable, match="unexpected status 206"):
            await client.open_blob(REPO, BLOB_DIGEST)


@pytest.mark.anyio
async def test_blob_opening_is_retried_before_the_first_byte() -> None:
    fake = FakeRegistry(auth=None)
    fake.override = lambda r: httpx.Response(503) if len(fake.requests) == 1 else None
    async with opened(fake.client()) as client:
        assert await read_all(client) == BLOB
    assert len(fake.requests) == 2


# --- rate limit headers ---------------------------------------------------------------------


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


# --- real servers on loopback ---------------------------------------------------------------


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock


@asynccontextmanager
async def serve(app: Starlette) -> AsyncIterator[str]:
    sock = free_socket()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        for _ in range(500):
            if server.started:
                break
            await asyncio.sleep(0.01)
        assert server.started
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()


LARGE = os.urandom(3 * 1024 * 1024 + 17)
LARGE_DIGEST = Digest.of(LARGE)


def registry_app(cdn: str, seen: list[dict[str, str]]) -> Starlette:
    async def token(request: Request) -> Response:
        seen.append({"path": "token", **request.query_params})
        return JSONResponse({"access_token": "real-token", "expires_in": 300})

    def authorized(request: Request) -> bool:
        return request.headers.get("authorization") == "Bearer real-token"

    def challenge(request: Request, scope: str) -> Response:
        realm = f"{request.base_url}token"
        header = f'Bearer realm="{realm}",service="loopback",scope="{scope}"'
        return Response(status_code=401, headers={"WWW-Authenticate": header})

    async def blob(request: Request) -> Response:
        name, digest = request.path_params["name"], request.path_params["digest"]
        seen.append({"path": "blob", "authorization": request.headers.get("authorization", "")})
        if not authorized(request):
            return challenge(request, f"repository:{name}:pull")
        if digest != str(LARGE_DIGEST):
            return JSONResponse({"errors": [{"code": "BLOB_UNKNOWN", "message": "?"}]}, 404)
        return Response(
            status_code=307,
            headers={"Location": f"{cdn}/data/{LARGE_DIGEST.hex}", "RateLimit-Limit": "10;w=60"},
        )

    return Starlette(
        routes=[
            Route("/token", token),
            Route("/v2/{name:path}/blobs/{digest}", blob),
        ]
    )


def cdn_app(seen: list[dict[str, str]]) -> Starlette:
    async def data(request: Request) -> Response:
        seen.append({"path": "cdn", "authorization": request.headers.get("authorization", "")})
        start = 0
        headers = {"Content-Length": str(len(LARGE))}
        status = 200
        if "range" in request.headers:
            start = int(request.headers["range"].removeprefix("bytes=").rstrip("-"))
            headers = {
                "Content-Length": str(len(LARGE) - start),
                "Content-Range": f"bytes {start}-{len(LARGE) - 1}/{len(LARGE)}",
            }
            status = 206

        async def body() -> AsyncIterator[bytes]:
            for i in range(start, len(LARGE), 256 * 1024):
                yield LARGE[i : i + 256 * 1024]
                await asyncio.sleep(0)

        return StreamingResponse(body(), status_code=status, headers=headers)

    return Starlette(routes=[Route("/data/{hex}", data)])


@pytest.mark.anyio
async def test_real_servers_token_flow_redirect_and_streaming() -> None:
    seen: list[dict[str, str]] = []
    async with (
        serve(cdn_app(seen)) as cdn,
        serve(registry_app(cdn, seen)) as registry,
        opened(DistributionClient(registry, name="loopback")) as client,
    ):
        blob = await client.open_blob("library/alpine", LARGE_DIGEST)
        async with blob:
            assert blob.size == len(LARGE)
            chunks = [chunk async for chunk in blob]
        assert b"".join(chunks) == LARGE
        assert all(chunks)  # handed on as they arrive
        assert client.ratelimit == RateLimit(10, None, 60)

        blob = await client.open_blob("library/alpine", LARGE_DIGEST, offset=2_000_000)
        async with blob:
            assert blob.status == 206
            assert b"".join([c async for c in blob]) == LARGE[2_000_000:]

        with pytest.raises(UpstreamNotFound, match="BLOB_UNKNOWN"):
            await client.open_blob("library/alpine", Digest.of(b"missing"))
    assert [s["path"] for s in seen] == ["blob", "token", "blob", "cdn", "blob", "cdn", "blob"]
    assert seen[1]["scope"] == "repository:library/alpine:pull"
    assert seen[1]["service"] == "loopback"
    assert [s["authorization"] for s in seen if s["path"] == "cdn"] == ["", ""]
    assert seen[2]["authorization"] == "Bearer real-token"


@pytest.mark.anyio
async def test_real_servers_closing_a_blob_mid_way_frees_the_connection() -> None:
    seen: list[dict[str, str]] = []
    async with (
        serve(cdn_app(seen)) as cdn,
        serve(registry_app(cdn, seen)) as registry,
        # One connection in the pool: a leaked one would make the next request time out.
        opened(DistributionClient(registry, max_connections=1, read_timeout=3)) as client,
    ):
        for _ in range(3):
            blob = await client.open_blob("library/alpine", LARGE_DIGEST)
            async for chunk in blob:
                assert chunk == LARGE[: len(chunk)]
                break
            await blob.aclose()
        async with await client.open_blob("library/alpine", LARGE_DIGEST) as blob:
            assert b"".join([c async for c in blob]) == LARGE


@asynccontextmanager
async def raw_server(
    handle: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any],
) -> AsyncIterator[str]:
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        await server.wait_closed()


async def read_head(reader: asyncio.StreamReader) -> bytes:
    return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)


@pytest.mark.anyio
async def test_real_socket_closed_mid_body() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" + b"z" * 5000)
        await writer.drain()
        writer.close()

    async with (
        raw_server(handle) as url,
        opened(DistributionClient(url, retries=2, backoff=0)) as client,
    ):
        blob = await client.open_blob(REPO, BLOB_DIGEST)
        received = 0
        with pytest.raises(UpstreamUnavailable, match="RemoteProtocolError"):
            async for chunk in blob:
                received += len(chunk)
        await blob.aclose()
    assert received <= 5000


@pytest.mark.anyio
async def test_real_socket_read_timeout_is_retried_and_bounded() -> None:
    connections = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await read_head(reader)
        # Never answer; return once the client gives up and closes the connection.
        await asyncio.wait_for(reader.read(), 5)
        writer.close()

    async with raw_server(handle) as url:
        client = DistributionClient(url, read_timeout=0.2, retries=1, backoff=0)
        async with opened(client):
            started = time.monotonic()
            with pytest.raises(UpstreamUnavailable, match="ReadTimeout"):
                await client.head_manifest(REPO, "latest", ACCEPT)
    assert time.monotonic() - started < 1.5
    assert connections == 2


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
async def test_head_blob_reports_size_and_404() -> None:
    digest = Digest.of(b"hello")

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.method == "HEAD"
        if request.url.path.endswith(str(digest)):
            return httpx.Response(200, headers={"Content-Length": "5"})
        return httpx.Response(404)

    client = DistributionClient("http://upstream.test", transport=httpx.MockTransport(handler))
    try:
        assert await client.head_blob("x", digest) == 5
        with pytest.raises(UpstreamNotFound):
            await client.head_blob("x", Digest.of(b"other"))
    finally:
        await client.aclose()
