"""A large store for the garbage-collection workload, written straight to disk.

The registry:2 filesystem layout (which mirror shares), built with plain file writes in
seconds instead of hours of HTTP pushes. Its shape, for `manifests` = M:

- `repositories` repositories with M / repositories image manifests each;
- every manifest: a unique config, `unique_layers` unique layers and one base layer out
  of a pool of `shared_layers` (shared across repositories), all linked in its
  repository; a fraction `untagged` of the manifests has no tag (what an overwritten
  tag leaves behind), the rest one tag each, with registry:2's tag history link;
- `orphans` blobs no manifest references (abandoned pushes), linked where uploaded.

Blob counts: `blobs` = configs + unique layers + shared layers + orphans (manifests
themselves are stored as blobs too, on top). Content is small random bytes; digests
are real.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from dataclasses import dataclass
from pathlib import Path

ROOT = Path("docker/registry/v2")
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


@dataclass(frozen=True, slots=True)
class GCShape:
    manifests: int
    repositories: int
    unique_layers: int = 3
    shared_layers: int = 1000
    untagged: float = 0.2
    orphans: int = 9000

    @property
    def blobs(self) -> int:
        """Non-manifest blobs in the store."""
        return self.manifests * (1 + self.unique_layers) + self.shared_layers + self.orphans


FULL_SHAPE = GCShape(manifests=10_000, repositories=1_000)  # 50,000 blobs
QUICK_SHAPE = GCShape(manifests=500, repositories=50, shared_layers=50, orphans=450)


class _Writer:
    def __init__(self, root: Path, rng: random.Random) -> None:
        self.root = root / ROOT
        self.rng = rng
        self._dirs: set[Path] = set()

    def _write(self, path: Path, data: bytes) -> None:
        parent = path.parent
        if parent not in self._dirs:
            parent.mkdir(parents=True, exist_ok=True)
            self._dirs.add(parent)
        with open(path, "wb") as out:
            out.write(data)

    def blob(self, data: bytes) -> str:
        hex_ = hashlib.sha256(data).hexdigest()
        self._write(self.root / "blobs" / "sha256" / hex_[:2] / hex_ / "data", data)
        return f"sha256:{hex_}"

    def random_blob(self, size: int) -> tuple[str, int]:
        return self.blob(self.rng.randbytes(size)), size

    def link(self, relative: str, digest: str) -> None:
        self._write(self.root / "repositories" / relative / "link", digest.encode())


def _descriptor(media_type: str, digest: str, size: int) -> dict[str, object]:
    return {"mediaType": media_type, "digest": digest, "size": size}


def build_store(root: Path, shape: GCShape, *, seed: int = 0) -> None:
    """Write a store of `shape` under `root` (a storage root directory)."""
    rng = random.Random(seed)
    out = _Writer(root, rng)
    pool = [out.random_blob(rng.randrange(64, 512)) for _ in range(shape.shared_layers)]
    per_repository = shape.manifests // shape.repositories
    untagged_every = round(1 / shape.untagged) if shape.untagged else 0
    count = 0
    for r in range(shape.repositories):
        name = f"team{r % 37:02d}/app{r:05d}"
        linked: set[str] = set()
        for i in range(per_repository):
            config_raw = json.dumps({"architecture": "amd64", "os": "linux", "n": count}).encode()
            config, config_size = out.blob(config_raw), len(config_raw)
            layers = [out.random_blob(rng.randrange(64, 1024)) for _ in range(shape.unique_layers)]
            layers.append(pool[count % len(pool)] if pool else out.random_blob(64))
            raw = json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "config": _descriptor(OCI_CONFIG, config, config_size),
                    "layers": [_descriptor(OCI_LAYER, d, size) for d, size in layers],
                },
                indent=3,
            ).encode()
            digest = out.blob(raw)
            hex_ = digest.split(":", 1)[1]
            out.link(f"{name}/_manifests/revisions/sha256/{hex_}", digest)
            for blob in [config, *(d for d, _ in layers)]:
                linked.add(blob)
            if not (untagged_every and count % untagged_every == untagged_every - 1):
                tag = f"v{i}"
                out.link(f"{name}/_manifests/tags/{tag}/current", digest)
                out.link(f"{name}/_manifests/tags/{tag}/index/sha256/{hex_}", digest)
            count += 1
        orphans = shape.orphans // shape.repositories + (r < shape.orphans % shape.repositories)
        for _ in range(orphans):
            linked.add(out.random_blob(rng.randrange(64, 1024))[0])
        for blob in linked:
            out.link(f"{name}/_layers/sha256/{blob.split(':', 1)[1]}", blob)


def blob_names(root: Path) -> set[str]:
    """Digests of every blob directory with data under a storage root."""
    found: set[str] = set()
    base = root / ROOT / "blobs"
    for algorithm in os.listdir(base):
        for prefix in os.listdir(base / algorithm):
            for hex_ in os.listdir(base / algorithm / prefix):
                if (base / algorithm / prefix / hex_ / "data").is_file():
                    found.add(f"{algorithm}:{hex_}")
    return found
