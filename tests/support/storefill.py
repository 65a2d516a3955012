"""Put images straight into a `Store` (no HTTP), as a push or a pull-through fill would."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from mirror.digests import Digest
from mirror.store.store import Store
from tests.support.oci import OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST, random_bytes


@dataclass(frozen=True, slots=True)
class StoredImage:
    digest: Digest
    raw: bytes
    blobs: dict[Digest, bytes]  # config and layers
    children: tuple[StoredImage, ...] = ()

    @property
    def all_blobs(self) -> dict[Digest, bytes]:
        found = dict(self.blobs)
        for child in self.children:
            found.update(child.all_blobs)
        return found


def _descriptor(data: bytes, media_type: str, **extra: object) -> dict[str, object]:
    return {"mediaType": media_type, "digest": str(Digest.of(data)), "size": len(data), **extra}


async def put_image(
    store: Store,
    name: str,
    tag: str | None,
    *,
    seed: int = 0,
    layers: int = 2,
    layer_size: int = 4096,
    origin: str | None = None,
    arch: str = "amd64",
) -> StoredImage:
    """An OCI image in repository `name` (tagged `tag` unless None). With `origin`, its
    blobs are linked as a cache of that upstream links them."""
    repository = store.repository(name)
    config = json.dumps({"architecture": arch, "os": "linux", "seed": seed}).encode()
    contents = [random_bytes(layer_size, seed * 100 + i) for i in range(layers)]
    blobs: dict[Digest, bytes] = {}
    for data in [config, *contents]:
        info = await store.blobs.put(data)
        await repository.blobs.link(info.digest, origin=origin)
        blobs[info.digest] = data
    raw = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": _descriptor(config, OCI_CONFIG),
            "layers": [_descriptor(data, OCI_LAYER) for data in contents],
        }
    ).encode()
    manifest = await repository.manifests.put(raw, OCI_MANIFEST, verify=origin is None)
    if tag is not None:
        await repository.tags.tag(tag, manifest.digest, history=origin is None)
    return StoredImage(manifest.digest, raw, blobs)


async def put_index(
    store: Store,
    name: str,
    tag: str,
    *,
    seed: int = 0,
    arches: tuple[str, ...] = ("amd64", "arm64"),
    stored: tuple[str, ...] | None = None,
    origin: str | None = None,
) -> StoredImage:
    """An index over one image per architecture; only the `stored` ones (default all)
    are in the store, as in a cache where nobody pulled the others."""
    children = [
        await put_image(store, name, None, seed=seed * 10 + i, arch=arch, origin=origin)
        for i, arch in enumerate(arches)
    ]
    raw = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                _descriptor(child.raw, OCI_MANIFEST, platform={"os": "linux", "architecture": a})
                for child, a in zip(children, arches, strict=True)
            ],
        }
    ).encode()
    repository = store.repository(name)
    keep = set(stored if stored is not None else arches)
    for child, arch in zip(children, arches, strict=True):
        if arch not in keep:
            await repository.manifests.delete(child.digest)
    manifest = await repository.manifests.put(raw, OCI_INDEX, verify=False)
    await repository.tags.tag(tag, manifest.digest, history=origin is None)
    kept = tuple(c for c, a in zip(children, arches, strict=True) if a in keep)
    return StoredImage(manifest.digest, raw, {}, kept)


def fsize(path: str | os.PathLike[str]) -> int:
    return os.stat(path).st_size
