"""`copy_image(referrers=True)`: an image's referrers (a signature, an SBOM, and a
signature of the SBOM) copied with it, digests kept, between registries with the
referrers API (the mirror's standalone app), registries without it (the same app with
the API answering 404 and no OCI-Subject header, as Distribution 2.8: the fallback
tag), and OCI layouts (directory and archive)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from mirror.client.copy import copy_image
from mirror.client.endpoints import LayoutWriter, RegistryDestination, RegistrySource
from mirror.client.errors import ContentMismatch
from mirror.client.layout import ArchiveDestination, LayoutDestination, LayoutSource
from mirror.client.referrers import fallback_tag, find_referrers
from mirror.client.refs import ImageRef
from mirror.client.registry import Registry
from mirror.digests import Digest
from mirror.proxy.app import standalone_app
from mirror.registryhttp.errors import UpstreamNotFound
from mirror.store.drivers import create_driver
from tests.support.oci import OCI_INDEX, OCI_MANIFEST
from tests.support.referrers import SBOM, Signed, push_signed


class NoReferrersApi(httpx.AsyncBaseTransport):
    """A registry as Distribution 2.8 is one: no referrers API, no OCI-Subject."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.api_asked = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if "/referrers/" in request.url.path:
            self.api_asked += 1
            return httpx.Response(404, json={"errors": [{"code": "NOT_FOUND", "message": "x"}]})
        response = await self.inner.handle_async_request(request)
        response.headers.pop("OCI-Subject", None)
        return response


def make_registry(host: str, *, api: bool = True) -> Registry:
    app = standalone_app(create_driver("inmemory", {}), delete_enabled=True)
    transport: httpx.AsyncBaseTransport = httpx.ASGITransport(app=app)
    if not api:
        transport = NoReferrersApi(transport)
    return Registry(host, transport=transport, scheme="http", use_docker_config=False)


async def referrers_of(registry: Registry, repo: str, subject: Digest) -> set[Digest]:
    return {d.digest for d in await find_referrers(registry, repo, subject)}


async def assert_signed(registry: Registry, repo: str, signed: Signed) -> None:
    assert await registry.resolve(repo, "v1") == signed.image
    assert await referrers_of(registry, repo, signed.image) == {signed.signature, signed.sbom}
    assert await referrers_of(registry, repo, signed.sbom) == {signed.sbom_signature}
    assert await referrers_of(registry, repo, signed.signature) == set()
    for digest in (signed.signature, signed.sbom, signed.sbom_signature):
        manifest = (await registry.get_manifest(repo, str(digest))).parsed()
        assert manifest.digest == digest
        for blob in manifest.blobs:
            assert await registry.has_blob(repo, blob.digest)


async def registry_copy(
    source: Registry, destination: Registry, repo: str, *, referrers: bool = True
) -> int:
    result = await copy_image(
        RegistrySource(source, ImageRef.parse(f"{source.host}/{repo}:v1")),
        RegistryDestination(destination, ImageRef.parse(f"{destination.host}/{repo}:v1")),
        referrers=referrers,
    )
    return result.referrers


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("source_api", "destination_api"), [(True, True), (True, False), (False, True), (False, False)]
)
async def test_referrers_copied_between_registries(source_api: bool, destination_api: bool) -> None:
    async with (
        make_registry("src.test", api=source_api) as source,
        make_registry("dst.test", api=destination_api) as destination,
    ):
        signed = await push_signed(source, "team/app")
        assert await registry_copy(source, destination, "team/app") == 3
        await assert_signed(destination, "team/app", signed)
        # Without the API the referrers live in the subject's fallback index, with the
        # descriptors the API would give (artifactType, annotations).
        if not destination_api:
            index = await destination.get_manifest("team/app", fallback_tag(signed.image))
            assert index.media_type == OCI_INDEX
            entries = {d.digest: d for d in index.parsed().manifests}
            assert entries[signed.sbom].artifact_type == SBOM
            assert entries[signed.sbom].annotations == {"org.example.kind": SBOM}
        # A second copy finds everything in place and adds no duplicate entry.
        assert await registry_copy(source, destination, "team/app") == 3
        found = await find_referrers(destination, "team/app", signed.image)
        assert sorted(str(d.digest) for d in found) == sorted(
            str(d) for d in (signed.signature, signed.sbom)
        )


@pytest.mark.anyio
async def test_without_the_flag_no_referrer_is_copied() -> None:
    async with make_registry("src.test") as source, make_registry("dst.test") as destination:
        signed = await push_signed(source, "team/app")
        assert await registry_copy(source, destination, "team/app", referrers=False) == 0
        assert await destination.resolve("team/app", "v1") == signed.image
        assert await referrers_of(destination, "team/app", signed.image) == set()
        with pytest.raises(UpstreamNotFound):
            await destination.get_manifest("team/app", str(signed.signature))


@pytest.mark.anyio
@pytest.mark.parametrize("archive", [False, True])
async def test_referrers_through_a_layout(tmp_path: Path, archive: bool) -> None:
    path = tmp_path / ("image.tar" if archive else "layout")
    async with (
        make_registry("src.test", api=False) as source,
        make_registry("dst.test") as destination,
    ):
        signed = await push_signed(source, "team/app")
        layout = await (ArchiveDestination if archive else LayoutDestination).open(path)
        result = await copy_image(
            RegistrySource(source, ImageRef.parse("src.test/team/app:v1")),
            LayoutWriter(layout),
            referrers=True,
        )
        assert result.referrers == 3
        reader = await LayoutSource.open(path, None, archive=archive)  # the image, not a referrer
        try:
            assert {d.digest for d in await reader.referrers(signed.image)} == {
                signed.signature,
                signed.sbom,
            }
            back = await copy_image(
                reader,
                RegistryDestination(destination, ImageRef.parse("dst.test/team/app:v1")),
                referrers=True,
            )
        finally:
            await reader.aclose()
        assert back.digest == signed.image and back.referrers == 3
        await assert_signed(destination, "team/app", signed)


@pytest.mark.anyio
async def test_a_listed_manifest_with_another_subject_is_not_copied() -> None:
    """A fallback index is kept by clients and may be stale or wrong."""
    async with (
        make_registry("src.test", api=False) as source,
        make_registry("dst.test") as destination,
    ):
        signed = await push_signed(source, "team/app")
        # The signature's own fallback index lists the SBOM, whose subject is the image.
        sbom = await source.get_manifest("team/app", str(signed.sbom))
        wrong = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": [sbom.parsed().referrer_descriptor().to_json()],
            }
        ).encode()
        await source.put_manifest("team/app", fallback_tag(signed.signature), wrong, OCI_INDEX)
        assert await registry_copy(source, destination, "team/app") == 3
        assert await referrers_of(destination, "team/app", signed.signature) == set()


@pytest.mark.anyio
async def test_a_fallback_tag_that_is_no_index_is_a_clear_error() -> None:
    async with (
        make_registry("src.test", api=False) as source,
        make_registry("dst.test") as destination,
    ):
        signed = await push_signed(source, "team/app")
        image = await source.get_manifest("team/app", "v1")
        await source.put_manifest("team/app", fallback_tag(signed.sbom), image.raw, OCI_MANIFEST)
        with pytest.raises(ContentMismatch, match=r"referrers tag .* not an image index"):
            await registry_copy(source, destination, "team/app")


def test_fallback_tag_follows_the_tag_schema() -> None:
    digest = Digest.of(b"x")
    assert fallback_tag(digest) == f"sha256-{digest.hex}"
    long = Digest.of(b"x", "sha512")
    assert fallback_tag(long) == f"sha512-{long.hex[:64]}"
