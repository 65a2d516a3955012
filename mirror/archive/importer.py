"""Loading an archive into the store: verify everything, then make it visible.

1. The tar is read once, front to back. Each blob goes through `BlobStore.ingest`, which
   checks its digest and size before it is committed; one already stored with that size
   is skipped (on a seekable file without reading it). Committed blobs are invisible:
   no repository links them yet.
2. The index is checked against the store: every entry's manifest, every child and blob
   the archive's list names, present with the size its descriptor gives.
3. Only then, repository by repository: blobs linked (with the upstream's origin for a
   cache repository), child manifests before their index, the tag last, and its
   freshness stamp. Each write is idempotent.

A damaged archive fails in 1 or 2, before anything is linked. An import that was killed
left committed blobs and maybe some complete repositories; running it again skips what
is stored and finishes the rest.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field

from mirror.archive.export import NoProgress, Progress
from mirror.archive.format import (
    INDEX,
    LAYOUT,
    LIST,
    MAX_INDEX_SIZE,
    ArchiveInvalid,
    Entry,
    member_digest,
    parse_index,
    parse_list,
)
from mirror.archive.pending import Pending
from mirror.archive.tarreader import TarDamaged, TarReader
from mirror.cache.pullthrough.state import write_stamp
from mirror.coordination.metadata import MetadataStore
from mirror.digests import Digest
from mirror.errors import BlobUnknown, DigestInvalid, ManifestInvalid, SizeInvalid, Unsupported
from mirror.store.blobs import BlobIngest
from mirror.store.store import Store
from mirror.types import MAX_MANIFEST_SIZE, Manifest

log = logging.getLogger("mirror.archive")

# Blobs being published (fsync, rename) while the next ones are read: a commit waits on
# the disk's flush, which would otherwise stall the stream once per blob.
COMMITS_IN_FLIGHT = 4
APPLY_IN_FLIGHT = 8


@dataclass(slots=True)
class ImportResult:
    entries: int = 0
    repositories: int = 0
    blobs: int = 0  # written to the store
    bytes: int = 0
    present: int = 0  # already stored
    stamps_failed: int = 0


@dataclass(slots=True)
class _Closure:
    """A manifest to store in a repository, after its children and with its blobs."""

    manifest: Manifest
    media_type: str
    children: list[_Closure] = field(default_factory=list)
    blobs: list[Digest] = field(default_factory=list)


class Importer:
    def __init__(
        self,
        store: Store,
        *,
        metadata: MetadataStore | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.store = store
        self.metadata = metadata
        self.progress = progress or NoProgress()
        self.result = ImportResult()
        self._entries: list[Entry] | None = None
        self._listed: set[Digest] | None = None
        self._layout = False
        self._sizes: dict[Digest, int] = {}
        self._commits = Pending(COMMITS_IN_FLIGHT)

    async def run(self, reader: TarReader, size: int | None) -> ImportResult:
        """Import the archive `reader` reads (`size`: its length, for progress).

        Raises ArchiveInvalid (one line: what is wrong, and where).
        """
        self.progress.start(size or 0, 0)
        try:
            await self._read(reader)
        except TarDamaged as exc:
            raise ArchiveInvalid(str(exc)) from None
        finally:
            await self._commits.close()
        if not self._layout:
            raise ArchiveInvalid(f"no {LAYOUT} file: not an OCI image layout")
        if self._entries is None:
            raise ArchiveInvalid(f"no {INDEX}: not an OCI image layout")
        plans = [(entry, await self._plan(entry)) for entry in self._entries]
        # Each link is a small durable write (an fsync): many at once, not one by one.
        gate = asyncio.Semaphore(APPLY_IN_FLIGHT)

        async def apply(entry: Entry, closure: _Closure) -> None:
            async with gate:
                await self._apply(entry, closure)

        await asyncio.gather(*(apply(entry, closure) for entry, closure in plans))
        self.result.entries = len(plans)
        self.result.repositories = len({entry.repository for entry, _ in plans})
        return self.result

    # -- 1: the stream ------------------------------------------------------------------

    async def _read(self, reader: TarReader) -> None:
        while (member := await reader.next()) is not None:
            name = member.name.removeprefix("./")
            digest = member_digest(name)
            if digest is not None:
                if not member.regular:
                    raise ArchiveInvalid(f"member {name} is not a regular file")
                await self._blob(reader, digest, member.size)
            elif name == LAYOUT and member.regular:
                self._check_layout(await reader.read_all(64 * 1024))
            elif name == INDEX and member.regular:
                self._entries = parse_index(await reader.read_all(MAX_INDEX_SIZE))
            elif name == LIST and member.regular:
                self._listed = set(parse_list(await reader.read_all(MAX_INDEX_SIZE)))
            self.progress.advance(512)

    def _check_layout(self, raw: bytes) -> None:
        try:
            version = json.loads(raw)["imageLayoutVersion"]
        except (ValueError, UnicodeDecodeError, KeyError, TypeError):
            raise ArchiveInvalid(f"{LAYOUT} is not an OCI layout marker") from None
        if not isinstance(version, str) or not version.startswith("1."):
            raise ArchiveInvalid(f"{LAYOUT}: image layout version {version!r} is not 1.x")
        self._layout = True

    async def _blob(self, reader: TarReader, digest: Digest, size: int) -> None:
        self.progress.item(str(digest))
        self._sizes[digest] = size
        try:
            stored = await self.store.blobs.stat(digest)
        except BlobUnknown:
            stored = None
        if stored is not None and stored.size == size:
            self.result.present += 1
            self.progress.advance(size)
            return
        ingest = await self.store.blobs.ingest(digest)
        try:
            async for chunk in reader.chunks():
                await ingest.write(chunk)
                self.progress.advance(len(chunk))
            await ingest.verify(size)
        except (DigestInvalid, SizeInvalid) as exc:
            raise ArchiveInvalid(f"blob {digest} is damaged: {exc.message}") from None
        except BaseException:
            await ingest.cancel()
            raise
        # Verified: publishing it (fsync, rename) goes on while the next blob is read.
        await self._commits.add(self._commit(ingest, size))
        self.result.blobs += 1
        self.result.bytes += size

    async def _commit(self, ingest: BlobIngest, size: int) -> None:
        try:
            await ingest.commit(size)
        finally:
            await ingest.cancel()

    # -- 2: the index against the store -------------------------------------------------

    def _required(self, digest: Digest, *, blob: bool) -> bool:
        """Whether a referenced digest must be here: the list names it, or (an archive
        without one) it is a config or layer. An index child that is listed nowhere is
        a platform the exporting cache never fetched."""
        if self._listed is not None:
            return digest in self._listed
        return blob

    async def _size(self, digest: Digest) -> int | None:
        try:
            return (await self.store.blobs.stat(digest)).size
        except BlobUnknown:
            return None

    def _missing(self, what: str) -> ArchiveInvalid:
        hint = ""
        if self._listed is not None:
            hint = " (was the archive made --since one that was not imported here?)"
        return ArchiveInvalid(f"{what} is neither in the archive nor in the store{hint}")

    async def _plan(self, entry: Entry) -> _Closure:
        where = entry.ref_name if entry.tag is not None else f"{entry.repository} (untagged)"
        descriptor = entry.descriptor
        closure = await self._manifest(descriptor.digest, descriptor.size, descriptor.media_type)
        if closure is None:
            raise self._missing(f"manifest {descriptor.digest} of {where}")
        return closure

    async def _manifest(self, digest: Digest, size: int, media_type: str) -> _Closure | None:
        stored = await self._size(digest)
        if stored is None:
            return None
        if stored != size:
            raise ArchiveInvalid(f"manifest {digest} is {stored} bytes, its descriptor says {size}")
        try:
            raw = await self.store.blobs.get(digest, MAX_MANIFEST_SIZE)
            manifest = Manifest.parse(raw, media_type, digest=digest)
        except (SizeInvalid, ManifestInvalid, Unsupported) as exc:
            raise ArchiveInvalid(f"manifest {digest} is not valid: {exc.message}") from None
        closure = _Closure(manifest, media_type)
        for child in manifest.manifests:
            found = await self._manifest(child.digest, child.size, child.media_type)
            if found is not None:
                closure.children.append(found)
            elif self._required(child.digest, blob=False):
                raise self._missing(f"manifest {child.digest} (listed by {digest})")
        for blob in manifest.blobs:
            if "foreign" in blob.media_type or "nondistributable" in blob.media_type:
                continue
            stored = await self._size(blob.digest)
            if stored is None:
                if self._required(blob.digest, blob=True):
                    raise self._missing(f"blob {blob.digest} of manifest {digest}")
                continue
            if stored != blob.size:
                raise ArchiveInvalid(
                    f"manifest {digest} says blob {blob.digest} is {blob.size} bytes; "
                    f"it is {stored}"
                )
            closure.blobs.append(blob.digest)
        return closure

    # -- 3: making it visible -----------------------------------------------------------

    async def _apply(self, entry: Entry, closure: _Closure) -> None:
        repository = self.store.repository(entry.repository)
        await self._store(repository.name, closure, entry.origin)
        if entry.tag is None:
            return
        digest = closure.manifest.digest
        await repository.tags.tag(entry.tag, digest, history=entry.origin is None)
        if entry.origin is not None and self.metadata is not None:
            try:
                await write_stamp(self.metadata, entry.repository, entry.tag, digest)
            except Exception:
                # Without its stamp the tag is revalidated (or, offline, served stale).
                log.warning("freshness stamp of %s not written", entry.ref_name, exc_info=True)
                self.result.stamps_failed += 1

    async def _store(self, name: str, closure: _Closure, origin: str | None) -> None:
        repository = self.store.repository(name)
        for child in closure.children:
            await self._store(name, child, origin)
        await asyncio.gather(*(repository.blobs.link(b, origin=origin) for b in closure.blobs))
        manifest = closure.manifest
        await repository.manifests.put(
            manifest.raw, closure.media_type, digest=manifest.digest, verify=False
        )
