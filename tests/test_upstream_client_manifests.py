"""Manifests through DistributionClient: HEAD parsing, digest checks, the size cap."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator

import httpx
import pytest

from mirror.digests import Digest
from mirror.registryhttp.client import MANIFEST_BODY_LIMIT, ManifestHead
from mirror.registryhttp.errors import UpstreamContentError
from mirror.types import MAX_MANIFEST_SIZE, OCI_INDEX
from tests.support.fakeregistry import (
    ACCEPT,
    MANIFEST,
    MANIFEST_DIGEST,
    REPO,
    BreakingStream,
    FakeRegistry,
    answering,
    opened,
)


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
