"""Copying an image (or an index with its children) between registries and layouts.

`copy_image(source, destination)` reads the root manifest, walks an index's children
(or, with `platform`, keeps the one child for it: the copy's digest is then that
child's, not the index's), copies every blob the destination lacks, several at a
time, then the child manifests, then the root under its tag. Digests never change:
manifests are copied byte for byte. Every byte read is verified against its digest
(by the registry client, by the layout reader, by the layout writer, by the
destination registry at the end of each upload); the destination names the image
only once everything it references is in place, so a cut copy leaves nothing that
points at missing or partial content.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TypeVar

from mirror.client.errors import LayoutError, PlatformMissing
from mirror.client.refs import ImageRef
from mirror.client.registry import Pushed, Registry, RemoteManifest
from mirror.digests import Digest
from mirror.errors import ManifestInvalid, Unsupported
from mirror.registryhttp.errors import UpstreamNotFound
from mirror.types import Descriptor, Manifest

if TYPE_CHECKING:  # a layout is imported (tarfile and all) only by a copy that uses one
    from mirror.client.layout import LayoutDestination

T = TypeVar("T")
DEFAULT_JOBS = 6
MAX_DEPTH = 4


class Progress(Protocol):
    def start(self, total: int, items: int) -> None: ...
    def blob_started(self, digest: Digest, size: int) -> None: ...
    def advance(self, digest: Digest, amount: int) -> None: ...
    def blob_done(self, digest: Digest) -> None: ...


class NoProgress:
    def start(self, total: int, items: int) -> None:
        pass

    def blob_started(self, digest: Digest, size: int) -> None:
        pass

    def advance(self, digest: Digest, amount: int) -> None:
        pass

    def blob_done(self, digest: Digest) -> None:
        pass


class Source(Protocol):
    name: str

    @property
    def tag(self) -> str | None:
        """The tag the source named (known after `root`), for a destination without one."""
        ...

    @property
    def registry_repo(self) -> tuple[str, str] | None:
        """(host, repository) when the source is a registry: mounts need it."""
        ...

    async def root(self) -> RemoteManifest: ...
    async def manifest(self, digest: Digest) -> RemoteManifest: ...
    def blob(self, descriptor: Descriptor, offset: int = 0) -> AsyncIterator[bytes]: ...
    async def aclose(self) -> None: ...


class Destination(Protocol):
    name: str

    async def put_blob(
        self, descriptor: Descriptor, source: Source, opener: Callable[[int], AsyncIterator[bytes]]
    ) -> Pushed: ...
    async def put_manifest(self, manifest: RemoteManifest, tag: str | None, *, root: bool) -> bool:
        """Store a manifest (under `tag`, else by digest); the root names the image.
        True when it was written, False when the destination had it."""
        ...

    async def commit(self) -> None: ...
    async def abort(self) -> None: ...


class RegistrySource:
    def __init__(self, registry: Registry, ref: ImageRef) -> None:
        self._registry = registry
        self._ref = ref
        self.name = str(ref)

    @property
    def tag(self) -> str | None:
        return self._ref.tag

    @property
    def registry_repo(self) -> tuple[str, str]:
        return (self._registry.host, self._ref.repository)

    async def root(self) -> RemoteManifest:
        return await self._registry.get_manifest(self._ref.repository, self._ref.reference)

    async def manifest(self, digest: Digest) -> RemoteManifest:
        return await self._registry.get_manifest(self._ref.repository, str(digest))

    async def blob(self, descriptor: Descriptor, offset: int = 0) -> AsyncIterator[bytes]:
        registry, repo = self._registry, self._ref.repository
        async with await registry.open_blob(repo, descriptor.digest, offset) as body:
            async for chunk in body:
                yield chunk

    async def aclose(self) -> None:
        pass


class RegistryDestination:
    def __init__(self, registry: Registry, ref: ImageRef, *, chunk_size: int | None = None):
        self._registry = registry
        self._ref = ref
        self._chunk_size = chunk_size
        self.name = str(ref)

    async def put_blob(
        self, descriptor: Descriptor, source: Source, opener: Callable[[int], AsyncIterator[bytes]]
    ) -> Pushed:
        mount_from: list[str] = []
        origin = source.registry_repo
        if origin is not None and origin[0] == self._registry.host:
            mount_from.append(origin[1])
        return await self._registry.push_blob(
            self._ref.repository,
            descriptor.digest,
            descriptor.size,
            opener,
            chunk_size=self._chunk_size,
            mount_from=mount_from,
        )

    async def put_manifest(self, manifest: RemoteManifest, tag: str | None, *, root: bool) -> bool:
        repo = self._ref.repository
        if tag is None:
            try:
                head = await self._registry.head_manifest(repo, str(manifest.digest))
            except UpstreamNotFound:
                head = None
            if head is not None:
                return False
        await self._registry.put_manifest(
            repo, tag or str(manifest.digest), manifest.raw, manifest.media_type
        )
        return True

    async def commit(self) -> None:
        pass

    async def abort(self) -> None:
        pass


class LayoutWriter:
    """A `Destination` over a layout directory (or an archive's working directory)."""

    def __init__(self, layout: LayoutDestination) -> None:
        self._layout = layout
        self.name = layout.name

    async def put_blob(
        self, descriptor: Descriptor, source: Source, opener: Callable[[int], AsyncIterator[bytes]]
    ) -> Pushed:
        if await self._layout.has(descriptor):
            return Pushed.PRESENT
        await self._layout.write(descriptor, opener(0))
        return Pushed.UPLOADED

    async def put_manifest(self, manifest: RemoteManifest, tag: str | None, *, root: bool) -> bool:
        descriptor = manifest.descriptor()
        written = False
        if not await self._layout.has(descriptor):
            await self._layout.write_bytes(descriptor, manifest.raw)
            written = True
        if root:
            self._layout.name_image(descriptor, tag)
        return written

    async def commit(self) -> None:
        await self._layout.commit()

    async def abort(self) -> None:
        await self._layout.abort()


@dataclass(slots=True)
class CopyResult:
    source: str
    destination: str
    digest: Digest  # what the destination now holds under the tag
    media_type: str
    source_digest: Digest  # the source's root (differs with `platform` on an index)
    tag: str | None
    platform: str | None = None
    manifests: int = 0
    manifests_written: int = 0
    blobs: int = 0
    uploaded: int = 0
    present: int = 0
    mounted: int = 0
    bytes: int = 0  # bytes of the blobs uploaded
    skipped_foreign: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {
            "source": self.source,
            "destination": self.destination,
            "digest": str(self.digest),
            "mediaType": self.media_type,
            "sourceDigest": str(self.source_digest),
            "tag": self.tag,
            "platform": self.platform,
            "manifests": self.manifests,
            "blobs": {
                "total": self.blobs,
                "uploaded": self.uploaded,
                "present": self.present,
                "mounted": self.mounted,
            },
            "bytes": self.bytes,
        }


def parse_platform(text: str) -> tuple[str, str, str | None]:
    parts = text.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise PlatformMissing(f"platform {text!r} is not OS/ARCH[/VARIANT]")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else None


def platform_text(platform: dict[str, object] | None) -> str:
    if not platform:
        return "unknown"
    parts = [str(platform.get("os", "?")), str(platform.get("architecture", "?"))]
    if platform.get("variant"):
        parts.append(str(platform["variant"]))
    return "/".join(parts)


def pick_platform(index: Manifest, wanted: str) -> Descriptor:
    os_name, arch, variant = parse_platform(wanted)
    for child in index.manifests:
        p = child.platform or {}
        if p.get("os") != os_name or p.get("architecture") != arch:
            continue
        have = p.get("variant")
        if (
            variant is None
            or have == variant
            or (arch == "arm64" and {have, variant} <= {None, "v8"})
        ):
            return child
    offered = ", ".join(platform_text(c.platform) for c in index.manifests) or "none"
    raise PlatformMissing(f"the index has no {wanted} image (it has: {offered})")


def _parse(manifest: RemoteManifest, where: str) -> Manifest:
    try:
        return manifest.parsed()
    except (ManifestInvalid, Unsupported) as exc:
        raise LayoutError(f"{where}: manifest {manifest.digest}: {exc.message}") from None


async def copy_image(
    source: Source,
    destination: Destination,
    *,
    tag: str | None = None,
    platform: str | None = None,
    jobs: int = DEFAULT_JOBS,
    progress: Progress | None = None,
) -> CopyResult:
    """Copy the image `source` names to `destination` under `tag` (default: the source's
    tag; with neither, by digest only). Raises UpstreamError, ClientError."""
    progress = progress or NoProgress()
    root = await source.root()
    parsed = _parse(root, source.name)
    source_digest = root.digest
    chosen = None
    if platform is not None and parsed.is_index:
        child = pick_platform(parsed, platform)
        chosen = platform_text(child.platform)
        root = await source.manifest(child.digest)
        parsed = _parse(root, source.name)
    tag = tag or source.tag
    limit = asyncio.Semaphore(max(1, jobs))
    tree = await _walk(source, root, parsed, limit, 0)
    blobs: dict[Digest, Descriptor] = {}
    for _, manifest in tree:
        for blob in manifest.blobs:
            blobs.setdefault(blob.digest, blob)
    result = CopyResult(
        source.name,
        destination.name,
        root.digest,
        root.media_type,
        source_digest,
        tag,
        chosen,
        manifests=len(tree),
        blobs=len(blobs),
    )
    progress.start(sum(b.size for b in blobs.values()), len(blobs))
    try:
        await _all(_blob(source, destination, b, result, progress, limit) for b in blobs.values())
        # Children first, concurrently; the root (under its tag) last.
        await _all(_manifest(destination, m, None, result, limit) for m, _ in tree[:-1])
        await _manifest(destination, root, tag, result, limit, root=True)
        await destination.commit()
    except BaseException:
        await destination.abort()
        raise
    return result


async def _walk(
    source: Source, manifest: RemoteManifest, parsed: Manifest, limit: asyncio.Semaphore, depth: int
) -> list[tuple[RemoteManifest, Manifest]]:
    """Every manifest the root reaches, children before their index, the root last."""
    if not parsed.is_index:
        return [(manifest, parsed)]
    if depth >= MAX_DEPTH:
        raise LayoutError(f"{source.name}: indexes nested deeper than {MAX_DEPTH}")

    async def child(descriptor: Descriptor) -> list[tuple[RemoteManifest, Manifest]]:
        async with limit:
            fetched = await source.manifest(descriptor.digest)
        return await _walk(source, fetched, _parse(fetched, source.name), limit, depth + 1)

    found = await _gather(child(d) for d in parsed.manifests)
    out: list[tuple[RemoteManifest, Manifest]] = []
    seen: set[Digest] = set()
    for part in found:
        for item in part:
            if item[0].digest not in seen:
                seen.add(item[0].digest)
                out.append(item)
    out.append((manifest, parsed))
    return out


async def _blob(  # noqa: PLR0917
    source: Source,
    destination: Destination,
    descriptor: Descriptor,
    result: CopyResult,
    progress: Progress,
    limit: asyncio.Semaphore,
) -> None:
    digest = descriptor.digest

    async def counted(offset: int) -> AsyncIterator[bytes]:
        async for chunk in source.blob(descriptor, offset):
            progress.advance(digest, len(chunk))
            result.bytes += len(chunk)
            yield chunk

    async with limit:
        progress.blob_started(digest, descriptor.size)
        outcome = await destination.put_blob(descriptor, source, counted)
        if outcome is not Pushed.UPLOADED:
            progress.advance(digest, descriptor.size)
        progress.blob_done(digest)
    if outcome is Pushed.UPLOADED:
        result.uploaded += 1
    elif outcome is Pushed.MOUNTED:
        result.mounted += 1
    else:
        result.present += 1


async def _manifest(
    destination: Destination,
    manifest: RemoteManifest,
    tag: str | None,
    result: CopyResult,
    limit: asyncio.Semaphore,
    *,
    root: bool = False,
) -> None:
    async with limit:
        if await destination.put_manifest(manifest, tag, root=root):
            result.manifests_written += 1


async def _all(coroutines: Iterable[Awaitable[None]]) -> None:
    await _gather(coroutines)


async def _gather(coroutines: Iterable[Awaitable[T]]) -> list[T]:
    """Run all; on a failure cancel the rest and raise that failure (not a group)."""
    tasks: list[asyncio.Task[T]] = []
    try:
        async with asyncio.TaskGroup() as group:
            for coroutine in coroutines:
                tasks.append(group.create_task(_as_coroutine(coroutine)))
    except BaseExceptionGroup as failed:
        raise _first(failed) from None
    return [task.result() for task in tasks]


async def _as_coroutine(awaitable: Awaitable[T]) -> T:
    return await awaitable


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    error: BaseException = group
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error
