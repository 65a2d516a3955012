"""DistributionClient against real servers and raw sockets on loopback."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from mirror.digests import Digest
from mirror.registryhttp.client import DistributionClient, RateLimit
from mirror.registryhttp.errors import UpstreamNotFound, UpstreamUnavailable
from tests.support.asgiserver import serving
from tests.support.fakeregistry import ACCEPT, BLOB_DIGEST, REPO, opened

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
        serving(cdn_app(seen)) as cdn,
        serving(registry_app(cdn, seen)) as registry,
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
        serving(cdn_app(seen)) as cdn,
        serving(registry_app(cdn, seen)) as registry,
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
async def test_retries_of_a_hung_upstream_are_bounded_by_one_deadline() -> None:
    """A hung upstream cost (retries + 1) x the read timeout before the answer (3 x 30 s
    by default); one deadline (connect + read timeout unless given) bounds the lot."""
    connections = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await read_head(reader)
        await asyncio.wait_for(reader.read(), 5)
        writer.close()

    async with raw_server(handle) as url:
        hung = DistributionClient(url, connect_timeout=0.2, read_timeout=0.3, retries=5, backoff=0)
        async with opened(hung) as client:
            with pytest.raises(UpstreamUnavailable) as caught:
                await client.head_manifest(REPO, "latest", ACCEPT)
        assert caught.value.unhealthy
        assert 1 <= connections <= 2  # not 6
        connections = 0
        # An explicit deadline cuts even the first attempt short of its read timeout.
        slow = DistributionClient(url, read_timeout=30, retries=5, backoff=0, deadline=0.3)
        async with opened(slow) as client:
            with pytest.raises(UpstreamUnavailable, match=r"within 0\.3s"):
                await client.get_manifest(REPO, "latest", ACCEPT)
        assert connections == 1
