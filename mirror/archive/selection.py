"""What an export holds: the entries of its index and every blob they reach.

A selection is made of repositories (all their tags and manifests) and single tags; with
none, the whole store. The walk reads the store the way the registry serves it: a
repository's tags and manifest revisions, each manifest's config and layers linked to
the repository, the children of an index that the repository holds, and the referrers
of what is exported. Content a cache repository never fetched (a platform nobody pulled,
a layer of a manifest only inspected) is not stored and is left out, counted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from mirror.archive.format import Entry
from mirror.digests import Digest
from mirror.errors import BlobUnknown, DigestInvalid, ManifestUnknown, NameUnknown
from mirror.store import paths
from mirror.store.driver import PathNotFound
from mirror.store.repository import Repository
from mirror.store.store import Store
from mirror.types import Descriptor, Manifest


class SelectionError(Exception):
    """A named repository or tag is not in the store (one line)."""


@dataclass(frozen=True, slots=True)
class Wanted:
    """`repository` whole (tag None), or one of its tags."""

    repository: str
    tag: str | None = None

    @classmethod
    def parse(cls, text: str) -> Wanted:
        """`REPO` or `REPO:TAG` (names as stored, e.g. `docker.io/library/alpine:3`)."""
        name, sep, tag = text.rpartition(":")
        if sep and "/" not in tag and name:
            return cls(name, tag)
        return cls(text)


@dataclass(slots=True)
class Selection:
    entries: list[Entry] = field(default_factory=list)
    blobs: dict[Digest, int] = field(default_factory=dict)  # digest -> size, in order
    left_out: int = 0  # referenced, but not stored in the repository

    @property
    def total(self) -> int:
        return sum(self.blobs.values())


OriginOf = Callable[[str], str | None]


async def select(store: Store, wanted: list[Wanted], origin_of: OriginOf) -> Selection:
    """Walk the store for `wanted` (empty: everything); raise SelectionError for a name
    that is not there. `origin_of(repository)` names the upstream a repository caches."""
    selection = Selection()
    if not wanted:
        wanted = [Wanted(name) for name in await store.repositories()]
    by_repository: dict[str, list[str | None]] = {}
    for item in wanted:
        by_repository.setdefault(item.repository, []).append(item.tag)
    for name, tags in by_repository.items():
        walk = _RepositoryWalk(store.repository(name), origin_of(name), selection)
        await walk.run(None if None in tags else [t for t in tags if t is not None])
    return selection


class _RepositoryWalk:
    def __init__(self, repository: Repository, origin: str | None, selection: Selection):
        self.repository = repository
        self.origin = origin
        self.selection = selection
        self.reached: set[Digest] = set()

    async def run(self, tags: list[str] | None) -> None:
        name = self.repository.name
        try:
            all_tags = await self.repository.tags.all()
        except NameUnknown:
            all_tags = []
        revisions = await self._revisions()
        if not all_tags and not revisions:
            raise SelectionError(f"repository {name} is not in the store")
        for tag in all_tags if tags is None else tags:
            digest = await self.repository.tags.get(tag)
            if digest is None:
                raise SelectionError(f"tag {name}:{tag} is not in the store")
            manifest = await self._manifest(digest)
            if manifest is None:
                self.selection.left_out += 1
                continue
            self.selection.entries.append(Entry(name, tag, manifest.descriptor(), self.origin))
            await self._reach(manifest)
        if tags is None:  # the whole repository: what no tag reaches as well
            await self._untagged(revisions)

    async def _untagged(self, revisions: list[Digest]) -> None:
        """An entry for each manifest no tag reaches and no other manifest lists."""
        loose = [m for d in revisions if d not in self.reached if (m := await self._manifest(d))]
        children = {child.digest for m in loose for child in m.manifests}
        for manifest in loose:
            if manifest.digest not in self.reached and manifest.digest not in children:
                entry = Entry(self.repository.name, None, manifest.descriptor(), self.origin)
                self.selection.entries.append(entry)
                await self._reach(manifest)

    async def _revisions(self) -> list[Digest]:
        driver = self.repository.blobs.store.driver
        base = f"{paths.manifests_dir(self.repository.name)}/revisions"
        found: list[Digest] = []
        try:
            algorithms = await driver.list(base)
        except PathNotFound:
            return found
        for algorithm in sorted(algorithms):
            try:
                hexes = await driver.list(f"{base}/{algorithm}")
            except PathNotFound:
                continue
            for hex_ in sorted(hexes):
                try:
                    found.append(Digest.parse(f"{algorithm}:{hex_}"))
                except DigestInvalid:
                    continue
        return found

    async def _manifest(self, digest: Digest) -> Manifest | None:
        try:
            return await self.repository.manifests.get(digest)
        except ManifestUnknown:
            return None

    async def _reach(self, manifest: Manifest) -> None:
        """Add `manifest`, what it references and its referrers (each once)."""
        if manifest.digest in self.reached:
            return
        self.reached.add(manifest.digest)
        self.selection.blobs[manifest.digest] = len(manifest.raw)
        for child in manifest.manifests:
            stored = await self._manifest(child.digest)
            if stored is None:
                self.selection.left_out += 1
            else:
                await self._reach(stored)
        for blob in manifest.blobs:
            await self._blob(blob)
        for referrer in await self.repository.referrers(manifest.digest):
            stored = await self._manifest(referrer.digest)
            if stored is not None and stored.digest not in self.reached:
                entry = Entry(self.repository.name, None, stored.descriptor(), self.origin)
                self.selection.entries.append(entry)
                await self._reach(stored)

    async def _blob(self, blob: Descriptor) -> None:
        if blob.digest in self.selection.blobs:
            return
        if "foreign" in blob.media_type or "nondistributable" in blob.media_type:
            return  # never pushed to registries, so never stored
        try:
            info = await self.repository.blobs.stat(blob.digest)
        except BlobUnknown:
            self.selection.left_out += 1
            return
        self.selection.blobs[blob.digest] = info.size
