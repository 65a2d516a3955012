"""registry:2's `storage.redirect` on the object stores: a blob GET answers 307 to a signed
URL of the store (unless `disable: true`); HEAD, ranges and manifests are served directly."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from mirror.config import parse_config
from mirror.metrics import MetricsRegistry
from mirror.proxy.app import create_app
from tests.support.emulators import AzureEmulator, S3Emulator, unique_root
from tests.support.lifespan import lifespan
from tests.support.oci import push_blob, random_bytes

pytestmark = pytest.mark.anyio


def storage_yaml(request: pytest.FixtureRequest) -> str:
    if request.param == "s3":
        s3: S3Emulator = request.getfixturevalue("s3_emulator")
        params = s3.params(s3.new_bucket(), rootdirectory=unique_root())
    else:
        azure: AzureEmulator = request.getfixturevalue("azure_emulator")
        params = azure.params(rootdirectory=unique_root())
    return json.dumps({str(request.param): params})


@pytest.fixture(params=["s3", "azure"])
def driver_yaml(request: pytest.FixtureRequest) -> str:
    return storage_yaml(request)


async def registry(
    tmp_path: Path, driver_yaml: str, redirect: str
) -> AsyncIterator[httpx.AsyncClient]:
    text = (
        f"version: 0.1\nstorage:\n  {driver_yaml[1:-1]}\n  redirect: {redirect}\n"
        f"cache: {{directory: {tmp_path}/cache}}\n"
    )
    app = create_app(parse_config(text, {}), MetricsRegistry())
    async with (
        lifespan(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://registry.test"
        ) as client,
    ):
        yield client


async def test_blob_get_redirects_to_a_signed_url(tmp_path: Path, driver_yaml: str) -> None:
    data = random_bytes(200_000, 7)
    async for client in registry(tmp_path, driver_yaml, "{}"):
        digest = await push_blob(client, "team/app", data)
        r = await client.get(f"/v2/team/app/blobs/{digest}")
        assert r.status_code == 307, r.text
        assert r.headers["docker-content-digest"] == digest
        location = r.headers["location"]
        assert location.startswith("http://127.0.0.1:")
        async with httpx.AsyncClient(trust_env=False) as direct:
            fetched = await direct.get(location)
        assert fetched.status_code == 200 and fetched.content == data
        # HEAD and ranges are answered by the registry itself.
        h = await client.head(f"/v2/team/app/blobs/{digest}")
        assert h.status_code == 200 and h.headers["content-length"] == str(len(data))
        part = await client.get(f"/v2/team/app/blobs/{digest}", headers={"Range": "bytes=10-19"})
        assert part.status_code == 206 and part.content == data[10:20]
        # A blob the repository does not have is a 404, not a redirect.
        other = await client.get(f"/v2/team/other/blobs/{digest}")
        assert other.status_code == 404


async def test_redirect_disabled_serves_the_bytes(tmp_path: Path, driver_yaml: str) -> None:
    data = random_bytes(100_000, 8)
    async for client in registry(tmp_path, driver_yaml, "{disable: true}"):
        digest = await push_blob(client, "team/app", data)
        r = await client.get(f"/v2/team/app/blobs/{digest}")
        assert r.status_code == 200 and r.content == data
