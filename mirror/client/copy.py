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

With `referrers`, the manifests whose `subject` is a copied manifest (signatures,
SBOMs; see `referrers`) are copied after the image, with what they reference, and
their own referrers in turn, digests kept.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from mirror.client.errors import LayoutError
from mirror.client.platforms import pick_platform, platform_text
from mirror.client.registry import Pushed, RemoteManifest
from mirror.digests import Digest
from mirror.errors import ManifestInvalid, Unsupported
from mirror.types import Descriptor, Manifest

T = TypeVar("T")
DEFAULT_JOBS = 6
MAX_DEPTH = 4
MAX_REFERRER_DEPTH = 8  # a signature of an attestation of an SBOM ... is deep enough


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
    async def referrers(self, subject: Digest) -> list[Descriptor]: ...
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

    async def put_referrer(self, manifest: RemoteManifest, subject: Digest) -> None:
        """Store a manifest whose subject is `subject` so the destination lists it."""
        ...

    async def commit(self) -> None: ...
    async def abort(self) -> None: ...


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
    referrers: int = 0  # manifests copied as referrers (their index children included)
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
            "referrers": self.referrers,
            "blobs": {
                "total": self.blobs,
                "uploaded": self.uploaded,
                "present": self.present,
                "mounted": self.mounted,
            },
            "bytes": self.bytes,
        }


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
    referrers: bool = False,
) -> CopyResult:
    """Copy the image `source` names to `destination` under `tag` (default: the source's
    tag; with neither, by digest only), and with `referrers` the referrers of every
    manifest copied. Raises UpstreamError, ClientError."""
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
    blobs = _blobs_of(tree, set())
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
        if referrers:
            await _copy_referrers(source, destination, tree, set(blobs), result, progress, limit)
        await destination.commit()
    except BaseException:
        await destination.abort()
        raise
    return result


Tree = list[tuple[RemoteManifest, Manifest]]


def _blobs_of(tree: Tree, copied: set[Digest]) -> dict[Digest, Descriptor]:
    blobs: dict[Digest, Descriptor] = {}
    for _, manifest in tree:
        for blob in manifest.blobs:
            if blob.digest not in copied:
                blobs.setdefault(blob.digest, blob)
    return blobs


async def _copy_referrers(  # noqa: PLR0917
    source: Source,
    destination: Destination,
    tree: Tree,
    copied: set[Digest],
    result: CopyResult,
    progress: Progress,
    limit: asyncio.Semaphore,
) -> None:
    """Round by round: the referrers of the manifests the last round copied (at first
    the image's), each with its blobs and index children, then itself."""
    seen = {manifest.digest for manifest, _ in tree}
    subjects = [manifest.digest for manifest, _ in tree]
    for _ in range(MAX_REFERRER_DEPTH):
        if not subjects:
            return
        lists = await _gather(_referrers_of(source, subject, limit) for subject in subjects)
        wanted: list[tuple[Digest, Descriptor]] = []
        for subject, found in zip(subjects, lists, strict=True):
            for descriptor in found:
                if descriptor.digest not in seen:
                    seen.add(descriptor.digest)
                    wanted.append((subject, descriptor))
        fetched = await _gather(_fetch_tree(source, d.digest, limit) for _, d in wanted)
        # A listing may be stale (a fallback tag is kept by clients): only what names
        # the subject is one of its referrers.
        pairs = [
            (subject, tree)
            for (subject, _), tree in zip(wanted, fetched, strict=True)
            if (named := tree[-1][1].subject) is not None and named.digest == subject
        ]
        trees = [tree for _, tree in pairs]
        blobs = _blobs_of([item for t in trees for item in t], copied)
        copied.update(blobs)
        result.blobs += len(blobs)
        progress.start(sum(b.size for b in blobs.values()), len(blobs))
        await _all(_blob(source, destination, b, result, progress, limit) for b in blobs.values())
        children = {m.digest: m for t in trees for m, _ in t[:-1]}  # of referrer indexes
        await _all(_manifest(destination, m, None, result, limit) for m in children.values())
        await _all(_referrer(destination, t[-1][0], subject, limit) for subject, t in pairs)
        result.referrers += sum(len(t) for t in trees)
        subjects = [m.digest for t in trees for m, _ in t]
        seen.update(subjects)
    if subjects:
        raise LayoutError(f"{source.name}: referrers nested deeper than {MAX_REFERRER_DEPTH}")


async def _referrers_of(
    source: Source, subject: Digest, limit: asyncio.Semaphore
) -> list[Descriptor]:
    async with limit:
        return await source.referrers(subject)


async def _fetch_tree(source: Source, digest: Digest, limit: asyncio.Semaphore) -> Tree:
    async with limit:
        fetched = await source.manifest(digest)
    return await _walk(source, fetched, _parse(fetched, source.name), limit, 0)


async def _referrer(
    destination: Destination,
    manifest: RemoteManifest,
    subject: Digest,
    limit: asyncio.Semaphore,
) -> None:
    async with limit:
        await destination.put_referrer(manifest, subject)


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
