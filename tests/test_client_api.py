"""`mirror.client.Registry` against the standalone registry in process (no network).

Every call of the client package once: ping, catalog, tags, manifests (get, head, put,
delete, content negotiation, exact bytes), blobs (get, head, range, monolithic,
streamed and chunked pushes, a push resumed after its connection broke, a cross-
repository mount), referrers; and the blocking `SyncRegistry`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from mirror.client import Pushed, Registry, SyncRegistry
from mirror.client.registry import MONOLITHIC_LIMIT
from mirror.digests import Digest
from mirror.proxy.app import standalone_app
from mirror.registryhttp.errors import UpstreamError, UpstreamNotFound
from mirror.store.drivers import create_driver
from tests.support.oci import (
    DOCKER_MANIFEST,
    OCI_CONFIG,
    OCI_MANIFEST,
    descriptor,
    manifest_bytes,
    random_bytes,
)

HOST = "registry.test"


def app_transport() -> httpx.ASGITransport:
    return httpx.ASGITransport(
        app=standalone_app(create_driver("inmemory", {}), delete_enabled=True)
    )


def registry_on(transport: httpx.AsyncBaseTransport) -> Registry:
    return Registry(HOST, transport=transport, scheme="http", use_docker_config=False)


@pytest.fixture
async def registry() -> AsyncIterator[Registry]:
    async with registry_on(app_transport()) as r:
        yield r


def opener(data: bytes, piece: int = 64 * 1024) -> object:
    async def open_at(offset: int) -> AsyncIterator[bytes]:
        for start in range(offset, len(data), piece):
            yield data[start : start + piece]

    return open_at


async def push(registry: Registry, repo: str, data: bytes, **options: object) -> Pushed:
    return await registry.push_blob(
        repo,
        Digest.of(data),
        len(data),
        opener(data),  # type: ignore[arg-type]
        **options,  # type: ignore[arg-type]
    )


async def push_image(registry: Registry, repo: str, tag: str, seed: int = 0) -> bytes:
    config = json.dumps({"architecture": "amd64", "os": "linux", "seed": seed}).encode()
    layer = random_bytes(200_000, seed)
    await push(registry, repo, config)
    await push(registry, repo, layer)
    raw = manifest_bytes(config, [layer])
    await registry.put_manifest(repo, tag, raw, OCI_MANIFEST)
    return raw


@pytest.mark.anyio
async def test_ping_catalog_tags(registry: Registry) -> None:
    await registry.ping()
    await push_image(registry, "team/app", "v1")
    await push_image(registry, "team/app", "v2", seed=1)
    await push_image(registry, "other", "latest", seed=2)
    assert await registry.catalog() == ["other", "team/app"]
    assert await registry.tags("team/app") == ["v1", "v2"]
    with pytest.raises(UpstreamNotFound):
        await registry.tags("missing")


@pytest.mark.anyio
async def test_manifests_are_byte_exact_and_negotiated(registry: Registry) -> None:
    raw = await push_image(registry, "team/app", "v1")
    digest = Digest.of(raw)
    fetched = await registry.get_manifest("team/app", "v1")
    assert fetched.raw == raw and fetched.digest == digest
    assert fetched.media_type == OCI_MANIFEST
    head = await registry.head_manifest("team/app", str(digest))
    assert head.digest == digest and head.size == len(raw)
    assert await registry.resolve("team/app", "v1") == digest
    await registry.delete_manifest("team/app", digest)
    with pytest.raises(UpstreamNotFound):
        await registry.get_manifest("team/app", "v1")


class Recording(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return await self.inner.handle_async_request(request)


@pytest.mark.anyio
async def test_the_accept_header_is_what_the_caller_asks() -> None:
    recording = Recording(app_transport())
    async with registry_on(recording) as registry:
        await push_image(registry, "r", "v1")
        await registry.get_manifest("r", "v1", accept=[DOCKER_MANIFEST])
        await registry.get_manifest("r", "v1")
    gets = [r for r in recording.requests if r.method == "GET" and "/manifests/" in r.url.path]
    assert gets[0].headers["accept"] == DOCKER_MANIFEST
    assert OCI_MANIFEST in gets[1].headers["accept"] and "list.v2" in gets[1].headers["accept"]


@pytest.mark.anyio
async def test_blob_pushes_every_way(registry: Registry) -> None:
    small = random_bytes(1000, 1)
    large = random_bytes(MONOLITHIC_LIMIT * 2 + 17, 2)
    chunked = random_bytes(700_001, 3)
    assert await push(registry, "r", small) is Pushed.UPLOADED
    assert await push(registry, "r", large) is Pushed.UPLOADED
    assert await push(registry, "r", chunked, chunk_size=100_000) is Pushed.UPLOADED
    assert await push(registry, "r", small) is Pushed.PRESENT
    for data in (small, large, chunked):
        assert await registry.get_blob("r", Digest.of(data)) == data
        assert await registry.head_blob("r", Digest.of(data)) == len(data)
    assert await push(registry, "s", large, mount_from=["r"]) is Pushed.MOUNTED
    assert await registry.mount_blob("t", Digest.of(small), "r")
    assert not await registry.mount_blob("t", Digest.of(b"nowhere"), "r")
    assert await registry.has_blob("s", Digest.of(large))


@pytest.mark.anyio
async def test_ranged_get(registry: Registry) -> None:
    data = random_bytes(100_000, 4)
    await push(registry, "r", data)
    async with await registry.open_blob("r", Digest.of(data), 1000, 500) as body:
        got = b"".join([chunk async for chunk in body])
    assert got == data[1000:1500]
    async with await registry.open_blob("r", Digest.of(data), 99_000) as body:
        got = b"".join([chunk async for chunk in body])
    assert got == data[99_000:]


@pytest.mark.anyio
async def test_a_wrong_digest_is_refused_and_nothing_stored(registry: Registry) -> None:
    data = random_bytes(5000, 5)
    wrong = Digest.of(b"something else")
    with pytest.raises(UpstreamError):
        await registry.push_blob("r", wrong, len(data), opener(data))  # type: ignore[arg-type]
    assert not await registry.has_blob("r", wrong)


class CutOnce(httpx.AsyncBaseTransport):
    """Forwards requests; the first streamed PATCH delivers only `keep` bytes to the
    registry (as a shorter chunk), then the client sees the connection break."""

    def __init__(self, inner: httpx.AsyncBaseTransport, keep: int) -> None:
        self.inner = inner
        self.keep = keep
        self.cut = 0
        self.methods: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.methods.append(request.method)
        if request.method != "PATCH" or self.cut:
            return await self.inner.handle_async_request(request)
        self.cut += 1
        body = bytearray()
        async for chunk in request.stream:  # type: ignore[union-attr]
            body += chunk
            if len(body) >= self.keep:
                break
        start = int(request.headers["content-range"].split("-")[0])
        headers = dict(request.headers)
        headers["content-length"] = str(self.keep)
        headers["content-range"] = f"{start}-{start + self.keep - 1}"
        partial = httpx.Request(
            "PATCH", request.url, headers=headers, content=bytes(body[: self.keep])
        )
        response = await self.inner.handle_async_request(partial)
        await response.aread()
        raise httpx.RemoteProtocolError("connection reset mid-body", request=request)


@pytest.mark.anyio
async def test_a_cut_upload_resumes_where_the_registry_stands() -> None:
    cutter = CutOnce(app_transport(), keep=300_000)
    data = random_bytes(MONOLITHIC_LIMIT * 3, 6)
    async with registry_on(cutter) as registry:
        assert await push(registry, "r", data) is Pushed.UPLOADED
        assert cutter.cut == 1
        # HEAD, POST, PATCH (cut), GET (status), PATCH (the rest), PUT
        assert cutter.methods == ["HEAD", "POST", "PATCH", "GET", "PATCH", "PUT"]
        assert await registry.get_blob("r", Digest.of(data)) == data


@pytest.mark.anyio
async def test_referrers(registry: Registry) -> None:
    raw = await push_image(registry, "r", "v1")
    subject = descriptor(raw, OCI_MANIFEST)
    config = b"{}"
    await push(registry, "r", config)
    signature = manifest_bytes(
        config,
        [],
        config_type=OCI_CONFIG,
        subject=subject,
        artifact_type="application/vnd.example.sig",
    )
    digest = await registry.put_manifest("r", str(Digest.of(signature)), signature, OCI_MANIFEST)
    found = await registry.referrers("r", Digest.of(raw))
    assert [d.digest for d in found] == [digest]
    assert found[0].artifact_type == "application/vnd.example.sig"


@pytest.fixture
def sync_registry() -> Iterator[SyncRegistry]:
    with SyncRegistry(HOST, transport=app_transport(), scheme="http", use_docker_config=False) as r:
        yield r


def test_the_sync_wrapper(sync_registry: SyncRegistry) -> None:
    data = random_bytes(2 * MONOLITHIC_LIMIT, 7)
    digest, outcome = sync_registry.push_blob("r", data)
    assert outcome is Pushed.UPLOADED
    assert sync_registry.get_blob("r", digest) == data
    config = b"{}"
    sync_registry.push_blob("r", config)
    raw = manifest_bytes(config, [data])
    assert sync_registry.put_manifest("r", "v1", raw, OCI_MANIFEST) == Digest.of(raw)
    assert sync_registry.tags("r") == ["v1"]
    assert sync_registry.get_manifest("r", "v1").raw == raw
    assert sync_registry.catalog() == ["r"]


class PlainOnly(httpx.AsyncBaseTransport):
    """A registry that speaks only plain HTTP: an https connection fails."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.schemes: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.schemes.append(request.url.scheme)
        if request.url.scheme == "https":
            raise httpx.ConnectError("[SSL: WRONG_VERSION_NUMBER] wrong version number")
        return await self.inner.handle_async_request(request)


@pytest.mark.anyio
async def test_insecure_falls_back_to_plain_http_only_without_https() -> None:
    plain = PlainOnly(app_transport())
    async with Registry(HOST, insecure=True, transport=plain, use_docker_config=False) as r:
        await r.ping()
        assert await r.catalog() == []
    assert plain.schemes[0] == "https" and set(plain.schemes[1:]) == {"http"}

    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="r"'})

    secure = Recording(httpx.MockTransport(refuse))
    async with Registry(HOST, insecure=True, transport=secure, use_docker_config=False) as r:
        with pytest.raises(UpstreamError):
            await r.tags("a")
    assert {req.url.scheme for req in secure.requests} == {"https"}
    # Without --insecure nothing but verified https is tried.
    strict = PlainOnly(app_transport())
    async with Registry(HOST, transport=strict, use_docker_config=False) as r:
        with pytest.raises(UpstreamError):
            await r.ping()
    assert set(strict.schemes) == {"https"}
