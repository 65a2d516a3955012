"""A bucket the reference registry (docker-registry 2.8, s3 driver) filled on moto is
served as is by `mirror` on its s3 driver: same keys, same layout."""

from __future__ import annotations

import hashlib
import json
import secrets
from pathlib import Path

import httpx
import pytest
import yaml

from mirror.proxy.app import standalone_app
from mirror.store.drivers import create_driver
from tests.support.binaries import require_binary
from tests.support.emulators import S3_KEY, S3_SECRET, S3Emulator, unique_root
from tests.support.processes import free_port, running

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def digest_of(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def push(registry: str, repo: str, tag: str) -> tuple[bytes, dict[str, bytes]]:
    """Push a two-blob image with monolithic uploads; return (manifest, blobs by digest)."""
    blobs = {
        digest_of(data): data
        for data in (b'{"architecture":"amd64"}', secrets.token_bytes(300_000))
    }
    with httpx.Client(base_url=registry, trust_env=False, timeout=30) as client:
        for digest, data in blobs.items():
            started = client.post(f"/v2/{repo}/blobs/uploads/")
            assert started.status_code == 202, started.text
            location = started.headers["location"]
            # Keep the location's own query (registry:2's _state): add, do not replace.
            separator = "&" if "?" in location else "?"
            done = client.put(f"{location}{separator}digest={digest}", content=data)
            assert done.status_code == 201, done.text
        config, layer = list(blobs)
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": config,
                    "size": len(blobs[config]),
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": layer,
                        "size": len(blobs[layer]),
                    }
                ],
            }
        ).encode()
        put = client.put(
            f"/v2/{repo}/manifests/{tag}",
            content=manifest,
            headers={"Content-Type": OCI_MANIFEST},
        )
        assert put.status_code == 201, put.text
    return manifest, blobs


async def test_mirror_serves_what_registry2_stored(s3_emulator: S3Emulator, tmp_path: Path) -> None:
    binary = require_binary("docker-registry")
    bucket, root = s3_emulator.new_bucket(), f"/{unique_root()}"
    s3 = {
        "region": "us-east-1",
        "bucket": bucket,
        "regionendpoint": s3_emulator.endpoint,
        "forcepathstyle": True,
        "accesskey": S3_KEY,
        "secretkey": S3_SECRET,
        "secure": False,
        "rootdirectory": root,
    }
    port = free_port()
    config = {
        "version": 0.1,
        "log": {"level": "info"},
        "storage": {"s3": s3, "redirect": {"disable": True}},
        "http": {"addr": f"127.0.0.1:{port}", "secret": secrets.token_hex(16)},
    }
    (tmp_path / "config.yml").write_text(yaml.safe_dump(config))
    url = f"http://127.0.0.1:{port}"
    with running(
        [binary, "serve", str(tmp_path / "config.yml")],
        log_path=tmp_path / "registry.log",
        # The machine's AWS_CA_BUNDLE breaks the Go SDK's HTTP client setup; an empty
        # value counts as unset for it (the emulator is plain HTTP anyway).
        env={"AWS_CA_BUNDLE": ""},
        ready_url=f"{url}/v2/",
    ):
        manifest, blobs = push(url, "team/app", "v1")

    driver = create_driver("s3", s3)
    app = standalone_app(driver)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://mirror.test"
    ) as client:
        got = await client.get("/v2/team/app/manifests/v1", headers={"Accept": OCI_MANIFEST})
        assert got.status_code == 200, got.text
        assert got.content == manifest
        assert got.headers["docker-content-digest"] == digest_of(manifest)
        for digest, data in blobs.items():
            blob = await client.get(f"/v2/team/app/blobs/{digest}")
            assert blob.status_code == 200
            assert blob.content == data
        tags = await client.get("/v2/team/app/tags/list")
        assert tags.json() == {"name": "team/app", "tags": ["v1"]}
        catalog = await client.get("/v2/_catalog")
        assert catalog.json() == {"repositories": ["team/app"]}
