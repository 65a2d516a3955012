"""What the repository and image pages show, read from the store and its metadata.

A tag row: the manifest it points at, the bytes it takes (manifest, config and layers;
for an index, its own manifest plus each child image stored here), its platforms, the
image's `created`, when the tag was last written (pushed, or refreshed from the
upstream) and when its content was last used, from the access log where the store keeps
one. An image: the manifest pretty-printed, layers, config (entrypoint, command, env,
labels), referrers by artifact type, and the pull command.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from mirror.coordination.accesslog import MetadataAccessLog
from mirror.coordination.metadata import MetadataStore
from mirror.digests import Digest
from mirror.errors import BlobUnknown, ManifestUnknown, RegistryError
from mirror.store import paths
from mirror.store.driver import PathNotFound, StorageDriverError
from mirror.store.repository import Repository
from mirror.types import Descriptor, Manifest

CONFIG_LIMIT = 4 * 1024 * 1024  # an image config larger than this is not read
TAG_PAGE_SIZE = 50


@dataclass(frozen=True, slots=True)
class ImageConfig:
    created: str | None = None
    os: str | None = None
    architecture: str | None = None
    variant: str | None = None
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    workdir: str | None = None
    user: str | None = None
    env: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    exposed_ports: list[str] = field(default_factory=list)

    @property
    def platform(self) -> str | None:
        if not self.os or not self.architecture:
            return None
        parts = [self.os, self.architecture, *([self.variant] if self.variant else [])]
        return "/".join(parts)

    @classmethod
    def parse(cls, raw: bytes) -> ImageConfig:
        """The fields shown of an image config; an unreadable one shows nothing."""
        try:
            doc = json.loads(raw)
        except ValueError:
            return cls()
        if not isinstance(doc, dict):
            return cls()
        inner = doc.get("config")
        inner = inner if isinstance(inner, dict) else {}
        return cls(
            created=_text(doc.get("created")),
            os=_text(doc.get("os")),
            architecture=_text(doc.get("architecture")),
            variant=_text(doc.get("variant")),
            entrypoint=_texts(inner.get("Entrypoint")),
            cmd=_texts(inner.get("Cmd")),
            workdir=_text(inner.get("WorkingDir")) or None,
            user=_text(inner.get("User")) or None,
            env=_texts(inner.get("Env")) or [],
            labels={
                str(k): str(v)
                for k, v in (inner.get("Labels") or {}).items()
                if isinstance(inner.get("Labels"), dict)
            },
            exposed_ports=sorted(str(p) for p in (inner.get("ExposedPorts") or {}))
            if isinstance(inner.get("ExposedPorts"), dict)
            else [],
        )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _texts(value: object) -> list[str] | None:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


@dataclass(frozen=True, slots=True)
class TagRow:
    tag: str
    digest: Digest | None  # None: the tag's manifest is missing
    kind: str  # image, index, artifact, missing
    size: int | None  # bytes stored for it; None when unknown
    platforms: list[str]
    created: str | None
    written: float | None  # when the tag was last pushed or refreshed
    used: float | None  # when its manifest was last used (the access log), if known


@dataclass(frozen=True, slots=True)
class TagsPage:
    rows: list[TagRow]
    total: int
    page: int
    pages: int


@dataclass(frozen=True, slots=True)
class Child:
    descriptor: Descriptor
    platform: str | None
    stored: bool


@dataclass(frozen=True, slots=True)
class LayerRow:
    descriptor: Descriptor
    stored: bool


@dataclass(frozen=True, slots=True)
class ImageDetails:
    manifest: Manifest
    pretty: str
    kind: str
    config: ImageConfig | None
    layers: list[LayerRow]
    children: list[Child]
    referrers: dict[str, list[Descriptor]]  # by artifact type
    tags: list[str]  # tags pointing at it
    size: int | None


IMAGE_CONFIGS = frozenset(
    {"application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json"}
)


def kind_of(manifest: Manifest) -> str:
    """index, image (a container image's config), or artifact (anything else: a
    signature, an SBOM, a Helm chart)."""
    if manifest.is_index:
        return "index"
    config = manifest.config
    if manifest.artifact_type or config is None or config.media_type not in IMAGE_CONFIGS:
        return "artifact"
    return "image"


def platform_text(platform: dict[str, Any] | None) -> str | None:
    if not platform:
        return None
    parts = [str(platform.get("os", "")), str(platform.get("architecture", ""))]
    if platform.get("variant"):
        parts.append(str(platform["variant"]))
    return "/".join(parts) if all(parts) else None


class Details:
    """Reads one repository for the pages; never raises for damaged content (shows
    what it could read), only NameUnknown / ManifestUnknown for what is not there."""

    def __init__(self, repository: Repository, metadata: MetadataStore | None) -> None:
        self.repository = repository
        self.access = MetadataAccessLog(metadata) if metadata is not None else None

    async def tags(self, page: int = 1, size: int = TAG_PAGE_SIZE) -> TagsPage:
        tags = await self.repository.tags.all()
        pages = max(1, -(-len(tags) // size))
        page = min(max(page, 1), pages)
        chosen = tags[(page - 1) * size : page * size]
        rows = list(await asyncio.gather(*(self._tag_row(tag) for tag in chosen)))
        if self.access is not None:
            digests = [row.digest for row in rows if row.digest is not None]
            used = dict(zip(digests, await self._last_used(digests), strict=True))
            rows = [
                row if row.digest is None else _with_used(row, used.get(row.digest)) for row in rows
            ]
        return TagsPage(rows, len(tags), page, pages)

    async def _last_used(self, digests: list[Digest]) -> list[float | None]:
        assert self.access is not None
        try:
            return await self.access.last_used(digests)
        except Exception:  # advisory: a metadata outage leaves the column empty
            return [None] * len(digests)

    async def _tag_row(self, tag: str) -> TagRow:
        written = await self._mtime(paths.tag_current(self.repository.name, tag))
        digest = await self.repository.tags.get(tag)
        if digest is None:
            return TagRow(tag, None, "missing", None, [], None, written, None)
        try:
            manifest = await self.repository.manifests.get(digest)
        except ManifestUnknown:
            return TagRow(tag, digest, "missing", None, [], None, written, None)
        kind = kind_of(manifest)
        if manifest.is_index:
            children = await self._children(manifest)
            platforms = [c.platform for c in children if c.platform and c.stored]
            sizes = await asyncio.gather(*(self._child_size(c) for c in children if c.stored))
            size = len(manifest.raw) + sum(s or 0 for s in sizes)
            return TagRow(tag, digest, kind, size, platforms, None, written, None)
        config = await self._config(manifest) if kind == "image" else None
        platforms = [p for p in [config.platform if config else None] if p]
        created = config.created if config else None
        return TagRow(tag, digest, kind, image_size(manifest), platforms, created, written, None)

    async def _mtime(self, path: str) -> float | None:
        try:
            return (await self.repository.blobs.store.driver.stat(path)).mtime
        except (PathNotFound, StorageDriverError):
            return None

    async def _config(self, manifest: Manifest) -> ImageConfig | None:
        if manifest.config is None or manifest.config.size > CONFIG_LIMIT:
            return None
        try:
            await self.repository.blobs.stat(manifest.config.digest)
            raw = await self.repository.blobs.store.get(manifest.config.digest, CONFIG_LIMIT)
        except (BlobUnknown, RegistryError, StorageDriverError):
            return None
        return ImageConfig.parse(raw)

    async def _children(self, index: Manifest) -> list[Child]:
        stored = await asyncio.gather(
            *(self.repository.manifests.exists(d.digest) for d in index.manifests)
        )
        return [
            Child(d, platform_text(d.platform), here)
            for d, here in zip(index.manifests, stored, strict=True)
        ]

    async def _child_size(self, child: Child) -> int | None:
        try:
            return image_size(await self.repository.manifests.get(child.descriptor.digest))
        except ManifestUnknown:
            return None

    async def image(self, digest: Digest) -> ImageDetails:
        """An image, index or artifact by digest; raise ManifestUnknown."""
        manifest = await self.repository.manifests.get(digest)
        kind = kind_of(manifest)
        config = await self._config(manifest) if kind == "image" else None
        layers = [
            LayerRow(d, await self.repository.blobs.is_linked(d.digest)) for d in manifest.layers
        ]
        children = await self._children(manifest) if manifest.is_index else []
        found = await self.repository.referrers(digest)
        referrers: dict[str, list[Descriptor]] = {}
        for descriptor in found:
            referrers.setdefault(descriptor.artifact_type or "(none)", []).append(descriptor)
        tags = await self.repository.tags.pointing_at(digest)
        size = None if manifest.is_index else image_size(manifest)
        return ImageDetails(
            manifest,
            pretty_json(manifest.raw),
            kind,
            config,
            layers,
            children,
            referrers,
            tags,
            size,
        )


def _with_used(row: TagRow, used: float | None) -> TagRow:
    return TagRow(
        row.tag, row.digest, row.kind, row.size, row.platforms, row.created, row.written, used
    )


def image_size(manifest: Manifest) -> int:
    """The bytes an image takes: its manifest, config and layers as the manifest says."""
    return len(manifest.raw) + sum(d.size for d in manifest.blobs)


def pretty_json(raw: bytes) -> str:
    try:
        return json.dumps(json.loads(raw), indent=2, ensure_ascii=False)
    except ValueError:
        return raw.decode("utf-8", "replace")
