"""An image with referrers, pushed as a client pushes them: a signature and an SBOM of
the image, and a signature of the SBOM (`ReferrerWriter`: through the referrers API, or
the fallback tag where the registry has none)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from mirror.client.referrers import ReferrerWriter
from mirror.client.registry import Registry, RemoteManifest
from mirror.digests import Digest
from tests.support.oci import OCI_MANIFEST, descriptor, manifest_bytes, random_bytes

EMPTY = b"{}"
EMPTY_TYPE = "application/vnd.oci.empty.v1+json"
SIGNATURE = "application/vnd.dev.cosign.simplesigning.v1+json"
SBOM = "application/spdx+json"


def opener(data: bytes) -> Callable[[int], AsyncIterator[bytes]]:
    async def open_at(offset: int) -> AsyncIterator[bytes]:
        yield data[offset:]

    return open_at


@dataclass(frozen=True)
class Signed:
    image: Digest
    signature: Digest
    sbom: Digest
    sbom_signature: Digest


def artifact(subject: bytes, artifact_type: str, payload: bytes) -> bytes:
    return manifest_bytes(
        EMPTY,
        [payload],
        config_type=EMPTY_TYPE,
        subject=descriptor(subject, OCI_MANIFEST),
        artifact_type=artifact_type,
        annotations={"org.example.kind": artifact_type},
    )


async def push_signed(registry: Registry, repo: str) -> Signed:
    """An image tagged v1, its signature and SBOM, and the SBOM's signature, the
    referrers pushed as a client does (`ReferrerWriter`: API or fallback tag)."""
    config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
    layer = random_bytes(300_000, 7)
    sbom_payload = random_bytes(5000, 8)
    for blob in (config, layer, EMPTY, b"sig-1", b"sig-2", sbom_payload):
        await registry.push_blob(repo, Digest.of(blob), len(blob), opener(blob))
    image = manifest_bytes(config, [layer])
    await registry.put_manifest(repo, "v1", image, OCI_MANIFEST)
    signature = artifact(image, SIGNATURE, b"sig-1")
    sbom = artifact(image, SBOM, sbom_payload)
    sbom_signature = artifact(sbom, SIGNATURE, b"sig-2")
    writer = ReferrerWriter(registry, repo)
    for raw, subject in ((signature, image), (sbom, image), (sbom_signature, sbom)):
        await writer.push(RemoteManifest(raw, OCI_MANIFEST, Digest.of(raw)), Digest.of(subject))
    return Signed(*(Digest.of(raw) for raw in (image, signature, sbom, sbom_signature)))
