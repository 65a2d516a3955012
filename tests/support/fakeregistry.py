"""A fake registry behind httpx.MockTransport, for tests of the distribution API client.

`FakeRegistry` plays registry.test with a token server (auth.test) and a CDN (cdn.test);
the helpers build clients on it and read blobs through them.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx

from mirror.digests import Digest
from mirror.registryhttp.auth import basic_credentials
from mirror.registryhttp.client import DistributionClient
from mirror.types import DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST

REGISTRY_URL = "https://registry.test"
REALM = "https://auth.test/token"
REPO = "library/alpine"
SCOPE = f"repository:{REPO}:pull"
ACCEPT = [OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST]
MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}).encode()
MANIFEST_DIGEST = Digest.of(MANIFEST)
BLOB = os.urandom(300_000)
BLOB_DIGEST = Digest.of(BLOB)


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
        return DistributionClient(REGISTRY_URL, transport=httpx.MockTransport(self), **options)

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


def answering(*responses: httpx.Response) -> Callable[[httpx.Request], httpx.Response]:
    """Answer registry requests with `responses` in turn, repeating the last one."""
    queue = list(responses)

    def answer(request: httpx.Request) -> httpx.Response:
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return answer


class BreakingStream(httpx.AsyncByteStream):
    """Yields `data`, then fails as a dropped connection would."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.data
        raise httpx.ReadError("connection reset by peer")
