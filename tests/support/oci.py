"""In-process helpers for API tests: make blobs and manifests, push them over HTTP."""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any

import httpx

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def random_bytes(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def descriptor(data: bytes, media_type: str, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest_of(data), "size": len(data), **extra}


def manifest_bytes(
    config: bytes,
    layers: list[bytes],
    *,
    media_type: str = OCI_MANIFEST,
    config_type: str = OCI_CONFIG,
    subject: dict[str, Any] | None = None,
    artifact_type: str | None = None,
    annotations: dict[str, str] | None = None,
) -> bytes:
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": descriptor(config, config_type),
        "layers": [descriptor(layer, OCI_LAYER) for layer in layers],
    }
    if subject is not None:
        doc["subject"] = subject
    if artifact_type is not None:
        doc["artifactType"] = artifact_type
    if annotations is not None:
        doc["annotations"] = annotations
    return json.dumps(doc, indent=2).encode()


def index_bytes(children: list[tuple[bytes, str]]) -> bytes:
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            descriptor(raw, media, platform={"architecture": arch, "os": "linux"})
            for (raw, media), arch in zip(
                children, ["amd64", "arm64", "s390x", "ppc64le"], strict=False
            )
        ],
    }
    return json.dumps(doc).encode()


async def push_blob(client: httpx.AsyncClient, name: str, data: bytes) -> str:
    """Monolithic POST ?digest= upload; returns the digest."""
    digest = digest_of(data)
    r = await client.post(f"/v2/{name}/blobs/uploads/?digest={digest}", content=data)
    assert r.status_code == 201, r.text
    return digest


async def push_blob_chunked(client: httpx.AsyncClient, name: str, data: bytes, chunk: int) -> str:
    digest = digest_of(data)
    r = await client.post(f"/v2/{name}/blobs/uploads/")
    assert r.status_code == 202, r.text
    location = r.headers["location"]
    for start in range(0, len(data), chunk):
        part = data[start : start + chunk]
        r = await client.patch(
            location,
            content=part,
            headers={
                "Content-Range": f"{start}-{start + len(part) - 1}",
                "Content-Type": "application/octet-stream",
            },
        )
        assert r.status_code == 202, r.text
        location = r.headers["location"]
    sep = "&" if "?" in location else "?"
    r = await client.put(f"{location}{sep}digest={digest}")
    assert r.status_code == 201, r.text
    return digest


async def push_manifest(
    client: httpx.AsyncClient, name: str, reference: str, raw: bytes, media_type: str = OCI_MANIFEST
) -> httpx.Response:
    return await client.put(
        f"/v2/{name}/manifests/{reference}", content=raw, headers={"Content-Type": media_type}
    )


async def push_image(
    client: httpx.AsyncClient,
    name: str,
    tag: str,
    *,
    seed: int = 0,
    layers: int = 2,
    layer_size: int = 2048,
    subject: dict[str, Any] | None = None,
    artifact_type: str | None = None,
) -> tuple[bytes, str]:
    """Push config + layers + manifest; returns (manifest bytes, manifest digest)."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "seed": seed}).encode()
    blobs = [random_bytes(layer_size, seed * 100 + i) for i in range(layers)]
    for blob in [config, *blobs]:
        await push_blob(client, name, blob)
    raw = manifest_bytes(config, blobs, subject=subject, artifact_type=artifact_type)
    r = await push_manifest(client, name, tag, raw)
    assert r.status_code == 201, r.text
    return raw, digest_of(raw)
