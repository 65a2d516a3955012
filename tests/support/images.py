"""Build real container images on disk as OCI image layout directories.

Layers are gzip'd tar archives of deterministic pseudo-random files, streamed to disk so a
layer of hundreds of megabytes never sits in memory. Each image gets a real image config
(rootfs diff_ids, history) and an OCI or Docker schema 2 manifest; `build_index` makes a
multi-platform index whose children have distinct configs and layers. Everything is
deterministic for a given seed, so two builds with the same arguments give the same
digests.

The layout (`oci-layout`, `index.json`, `blobs/sha256/...`) is what `skopeo copy oci:DIR:TAG`
reads; several tags can live in one layout directory. Each tag also gets a `dir:` transport
view (hard links) under `skopeo-dir/TAG`, the only way skopeo 1.9 reads Docker-media
images from disk; `BuiltImage.source_ref` picks the right one.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import os
import random
import secrets
import shutil
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCTET_STREAM = "application/octet-stream"

REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"
DIR_VIEWS = "skopeo-dir"
CREATED = "2024-01-01T00:00:00Z"
# Fixed mtime for tar entries: a moving clock would change digests between builds.
_EPOCH = 1704067200
_CHUNK = 1 << 20

Media = Literal["oci", "docker"]
Platform = tuple[str, ...]
DEFAULT_PLATFORMS: tuple[Platform, ...] = (("linux", "amd64"), ("linux", "arm64", "v8"))


@dataclass(frozen=True, slots=True)
class BlobFile:
    """One content-addressed file on disk."""

    digest: str
    size: int
    path: Path
    media_type: str = OCTET_STREAM

    def descriptor(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}

    @property
    def hex(self) -> str:
        return self.digest.split(":", 1)[1]


@dataclass(frozen=True, slots=True)
class BuiltImage:
    """An image manifest (or index) written into an OCI layout.

    For an index, `config` is None, `layers` is empty and `children` holds the
    per-platform images; `platform` is set on single-platform images.
    """

    layout: Path
    tag: str | None
    digest: str
    media_type: str
    manifest: bytes
    config: BlobFile | None
    layers: tuple[BlobFile, ...]
    children: tuple[BuiltImage, ...] = ()
    platform: Platform | None = None

    @property
    def size(self) -> int:
        """Size of the manifest (or index) bytes."""
        return len(self.manifest)

    @property
    def blobs(self) -> tuple[BlobFile, ...]:
        """Config and layer blobs of this image and of every child, without duplicates."""
        seen: dict[str, BlobFile] = {}
        own = ((self.config,) if self.config is not None else ()) + self.layers
        for blob in own + tuple(b for child in self.children for b in child.blobs):
            seen.setdefault(blob.digest, blob)
        return tuple(seen.values())

    @property
    def total_size(self) -> int:
        """Bytes a full pull transfers: every manifest plus every distinct blob."""
        manifests = self.size + sum(child.size for child in self.children)
        return manifests + sum(blob.size for blob in self.blobs)

    @property
    def oci_ref(self) -> str:
        """The skopeo `oci:` reference of this image, e.g. `oci:/tmp/x:latest`."""
        return f"oci:{self.layout}:{self._require_tag()}"

    @property
    def dir_path(self) -> Path:
        """The skopeo `dir:` transport view of this image (hard links into the layout)."""
        return self.layout / DIR_VIEWS / self._require_tag()

    @property
    def dir_ref(self) -> str:
        return f"dir:{self.dir_path}"

    @property
    def source_ref(self) -> str:
        """The reference skopeo should copy this image from.

        `oci:` for OCI media. Docker media go through `dir:`, because skopeo 1.9's `oci:`
        transport only resolves tags whose index.json entry has an OCI media type.
        """
        return self.oci_ref if self.media_type in (OCI_MANIFEST, OCI_INDEX) else self.dir_ref

    def _require_tag(self) -> str:
        if self.tag is None:
            raise ValueError("an untagged image (an index child) has no reference of its own")
        return self.tag

    def descriptor(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.platform is not None:
            out["platform"] = _platform_json(self.platform)
        return out


class _Sink(Protocol):
    def write(self, data: ReadableBuffer, /) -> object: ...
    def flush(self) -> object: ...


class _HashingWriter(io.RawIOBase):
    """A write-only stream that hashes and counts what passes through it to `sink`.

    Closing it leaves `sink` open: the owner of the sink closes it.
    """

    def __init__(self, sink: _Sink) -> None:
        super().__init__()
        self._sink = sink
        self.sha256 = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: ReadableBuffer, /) -> int:
        view = memoryview(data)
        self._sink.write(view)
        self.sha256.update(view)
        self.size += view.nbytes
        return view.nbytes

    def flush(self) -> None:
        self._sink.flush()


class _RandomReader:
    """A read-only file object yielding `size` pseudo-random bytes from `rng`."""

    def __init__(self, rng: random.Random, size: int) -> None:
        self._rng = rng
        self._left = size

    def read(self, n: int = -1) -> bytes:
        want = self._left if n < 0 else min(n, self._left)
        self._left -= want
        return self._rng.randbytes(want)


def ensure_layout(layout: Path) -> Path:
    """Create the skeleton of an OCI image layout at `layout` (idempotent)."""
    (layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    marker = layout / "oci-layout"
    if not marker.exists():
        marker.write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    index = layout / "index.json"
    if not index.exists():
        index.write_text(json.dumps({"schemaVersion": 2, "manifests": []}))
    return layout


def _blob_path(layout: Path, hex_digest: str) -> Path:
    return layout / "blobs" / "sha256" / hex_digest


def _store_bytes(layout: Path, data: bytes, media_type: str) -> BlobFile:
    hex_digest = hashlib.sha256(data).hexdigest()
    path = _blob_path(layout, hex_digest)
    path.write_bytes(data)
    return BlobFile(f"sha256:{hex_digest}", len(data), path, media_type)


def write_random_blob(path: Path, size: int, *, seed: int | str = 0) -> BlobFile:
    """Write `size` deterministic pseudo-random bytes to `path`; return its digest and size.

    Streams in 1 MiB chunks, so any size works without holding it in memory.
    """
    rng = random.Random(f"blob:{seed}")
    source = _RandomReader(rng, size)
    with path.open("wb") as out:
        writer = _HashingWriter(out)
        while chunk := source.read(_CHUNK):
            writer.write(chunk)
    return BlobFile(f"sha256:{writer.sha256.hexdigest()}", size, path)


def _file_sizes(total: int, file_size: int) -> list[int]:
    sizes = [file_size] * (total // file_size)
    if total % file_size:
        sizes.append(total % file_size)
    return sizes


def _write_layer(
    layout: Path, size: int, rng: random.Random, *, media_type: str, file_size: int, level: int
) -> tuple[BlobFile, str]:
    """Stream one gzip'd tar layer to the layout; return its blob and diff_id."""
    partial = layout / "blobs" / "sha256" / f".partial-{secrets.token_hex(8)}"
    with partial.open("wb") as out:
        compressed = _HashingWriter(out)
        # filename="" and mtime=0 keep the gzip header free of anything that varies.
        with gzip.GzipFile(
            filename="", mode="wb", fileobj=compressed, compresslevel=level, mtime=0
        ) as gz:
            plain = _HashingWriter(gz)
            with tarfile.open(
                fileobj=plain,
                mode="w|",
                format=tarfile.USTAR_FORMAT,
                bufsize=_CHUNK,
            ) as tar:
                _add_dir(tar, "data")
                for number, file_bytes in enumerate(_file_sizes(size, file_size)):
                    info = tarfile.TarInfo(f"data/file-{number:05d}.bin")
                    info.size = file_bytes
                    info.mtime = _EPOCH
                    info.mode = 0o644
                    tar.addfile(info, _RandomReader(rng, file_bytes))
        out.flush()
    hex_digest = compressed.sha256.hexdigest()
    path = _blob_path(layout, hex_digest)
    partial.replace(path)
    blob = BlobFile(f"sha256:{hex_digest}", compressed.size, path, media_type)
    return blob, f"sha256:{plain.sha256.hexdigest()}"


def _add_dir(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    info.mtime = _EPOCH
    tar.addfile(info)


def _platform_json(platform: Platform) -> dict[str, str]:
    if len(platform) not in (2, 3):
        raise ValueError(f"platform must be (os, arch) or (os, arch, variant), got {platform}")
    out = {"architecture": platform[1], "os": platform[0]}
    if len(platform) == 3:
        out["variant"] = platform[2]
    return out


def _canonical(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, indent=2, sort_keys=False).encode()


def _build_manifest(
    layout: Path,
    *,
    layers: Sequence[int],
    seed: int | str,
    media: Media,
    platform: Platform,
    file_size: int,
    compresslevel: int,
) -> BuiltImage:
    """Write the layers, config and manifest of one image; do not tag it."""
    oci = media == "oci"
    layer_type = OCI_LAYER_GZIP if oci else DOCKER_LAYER_GZIP
    built: list[BlobFile] = []
    diff_ids: list[str] = []
    history: list[dict[str, Any]] = []
    for index, size in enumerate(layers):
        if size < 0:
            raise ValueError(f"layer size must be >= 0, got {size}")
        rng = random.Random(f"layer:{seed}:{'/'.join(platform)}:{index}")
        blob, diff_id = _write_layer(
            layout, size, rng, media_type=layer_type, file_size=file_size, level=compresslevel
        )
        built.append(blob)
        diff_ids.append(diff_id)
        history.append({"created": CREATED, "created_by": f"layer {index}: {size} random bytes"})
    config_doc: dict[str, Any] = {
        "created": CREATED,
        **_platform_json(platform),
        "config": {
            "Env": ["PATH=/usr/bin:/bin"],
            "Cmd": ["/bin/sh"],
            "Labels": {"seed": str(seed)},
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    }
    config = _store_bytes(layout, _canonical(config_doc), OCI_CONFIG if oci else DOCKER_CONFIG)
    manifest_type = OCI_MANIFEST if oci else DOCKER_MANIFEST
    manifest_doc = {
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": config.descriptor(),
        "layers": [blob.descriptor() for blob in built],
    }
    raw = _canonical(manifest_doc)
    stored = _store_bytes(layout, raw, manifest_type)
    return BuiltImage(
        layout=layout,
        tag=None,
        digest=stored.digest,
        media_type=manifest_type,
        manifest=raw,
        config=config,
        layers=tuple(built),
        platform=tuple(platform),
    )


def _tag(image: BuiltImage, tag: str) -> BuiltImage:
    """Point `tag` at `image` in the layout's index.json, replacing an older entry."""
    index_path = image.layout / "index.json"
    index = json.loads(index_path.read_text())
    kept = [
        entry
        for entry in index.get("manifests", [])
        if entry.get("annotations", {}).get(REF_NAME_ANNOTATION) != tag
    ]
    entry = image.descriptor()
    entry.pop("platform", None)
    entry["annotations"] = {REF_NAME_ANNOTATION: tag}
    index["manifests"] = [*kept, entry]
    index_path.write_text(json.dumps(index, indent=2))
    tagged = dataclasses.replace(image, tag=tag)
    _write_dir_view(tagged)
    return tagged


def _write_dir_view(image: BuiltImage) -> None:
    """Lay the image out the way skopeo's `dir:` transport (version 1.1) reads it."""
    view = image.dir_path
    if view.exists():
        shutil.rmtree(view)
    view.mkdir(parents=True)
    (view / "version").write_text("Directory Transport Version: 1.1\n")
    (view / "manifest.json").write_bytes(image.manifest)
    for child in image.children:
        hex_digest = child.digest.split(":", 1)[1]
        (view / f"{hex_digest}.manifest.json").write_bytes(child.manifest)
    for blob in image.blobs:
        os.link(blob.path, view / blob.hex)


def build_image(
    layout: Path,
    *,
    layers: Sequence[int] = (1024,),
    seed: int | str = 0,
    tag: str = "latest",
    media: Media = "oci",
    platform: Platform = ("linux", "amd64"),
    file_size: int = 4 * _CHUNK,
    compresslevel: int = 0,
) -> BuiltImage:
    """Build one single-platform image into the OCI layout at `layout` and tag it.

    `layers` lists the random payload bytes of each layer (split into files of at most
    `file_size`). `media` picks OCI or Docker schema 2 manifest/config/layer types.
    `compresslevel` 0 stores the random data inside valid gzip (fast; random data does not
    compress anyway); raise it only when a test needs real deflate.
    """
    ensure_layout(layout)
    image = _build_manifest(
        layout,
        layers=layers,
        seed=seed,
        media=media,
        platform=platform,
        file_size=file_size,
        compresslevel=compresslevel,
    )
    return _tag(image, tag)


def build_index(
    layout: Path,
    *,
    platforms: Sequence[Platform] = DEFAULT_PLATFORMS,
    layers: Sequence[int] = (1024,),
    seed: int | str = 0,
    tag: str = "latest",
    media: Media = "oci",
    file_size: int = 4 * _CHUNK,
    compresslevel: int = 0,
) -> BuiltImage:
    """Build a multi-platform image index (OCI index or Docker manifest list) and tag it.

    Each platform gets its own config and layers (the platform is part of the random
    seed), so no blob is shared between children.
    """
    if not platforms:
        raise ValueError("an index needs at least one platform")
    ensure_layout(layout)
    children = tuple(
        _build_manifest(
            layout,
            layers=layers,
            seed=seed,
            media=media,
            platform=platform,
            file_size=file_size,
            compresslevel=compresslevel,
        )
        for platform in platforms
    )
    index_type = OCI_INDEX if media == "oci" else DOCKER_MANIFEST_LIST
    raw = _canonical(
        {
            "schemaVersion": 2,
            "mediaType": index_type,
            "manifests": [child.descriptor() for child in children],
        }
    )
    stored = _store_bytes(layout, raw, index_type)
    index = BuiltImage(
        layout=layout,
        tag=None,
        digest=stored.digest,
        media_type=index_type,
        manifest=raw,
        config=None,
        layers=(),
        children=children,
    )
    return _tag(index, tag)


def sha256_file(path: Path) -> str:
    """The sha256 digest of a file's content."""
    with path.open("rb") as f:
        return f"sha256:{hashlib.file_digest(f, 'sha256').hexdigest()}"


def layout_digest(layout: Path, tag: str) -> str:
    """The manifest digest an OCI layout's index.json gives `tag`."""
    index = json.loads((layout / "index.json").read_text())
    for entry in index["manifests"]:
        if entry.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag:
            digest: str = entry["digest"]
            return digest
    raise AssertionError(f"tag {tag} not in {layout}/index.json")
