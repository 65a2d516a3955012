"""What the store holds, repository by repository: the walk eviction and `du` share.

`scan` lists every repository (through the driver alone, so on every driver), reads its
tags, manifest revisions (what each references, read leniently as the collector does)
and layer links, and stats each blob once for its size (sizes are kept in `sizes`
between scans: content is addressed by digest, so a size never changes). A cache
repository is one whose name starts with an upstream's prefix (`origin_of`).

`images` cuts a repository into what eviction removes and `du` reports: each image is
a root manifest (tagged, or no index's child) with everything it reaches (index
children, configs, layers, its own manifest blob); a blob linked but reached by no
manifest (pulled by digest alone) is an image of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from mirror.digests import Digest
from mirror.lifecycle.digestset import digest_of
from mirror.lifecycle.layout import Layout, map_bounded
from mirror.lifecycle.references import UnreadableManifest, references_of
from mirror.store import paths

CONCURRENCY = 16


@dataclass(slots=True)
class Revision:
    digest: Digest
    blobs: tuple[Digest, ...]  # config, layers (what it references besides manifests)
    children: tuple[Digest, ...]  # index children
    mtime: float  # of the revision link: when it was stored here


@dataclass(slots=True)
class RepositoryScan:
    name: str
    origin: str | None  # the upstream prefix of a cache repository, None for a local one
    tags: dict[str, Digest]
    revisions: dict[Digest, Revision]
    linked: set[Digest]  # layer links


@dataclass(frozen=True, slots=True)
class Image:
    """A unit of eviction: a root manifest of one repository and all it reaches."""

    repository: str
    origin: str | None
    root: Digest | None  # None: a loose blob, linked and reached by no manifest
    tags: tuple[str, ...]
    manifests: frozenset[Digest]
    blobs: frozenset[Digest]  # every blob it needs, its manifests' own included
    mtime: float

    def label(self) -> str:
        what = f":{self.tags[0]}" if self.tags else f"@{self.root or next(iter(self.blobs))}"
        return f"{self.repository}{what}"


BlobStats = dict[Digest, tuple[int, float]]  # size and mtime of stored blobs


@dataclass(slots=True)
class Inventory:
    repositories: list[RepositoryScan]
    stats: BlobStats  # every stored blob any repository references or links

    @property
    def sizes(self) -> dict[Digest, int]:
        return {d: size for d, (size, _) in self.stats.items()}

    def size_of(self, digests: Iterable[Digest]) -> int:
        stats = self.stats
        return sum(stats[d][0] for d in digests if d in stats)


def images(scan: RepositoryScan, stats: BlobStats) -> list[Image]:
    """The repository's images (see the module's doc)."""
    revisions = scan.revisions
    reached = {child for r in revisions.values() for child in r.children}
    tagged: dict[Digest, list[str]] = {}
    for tag, digest in scan.tags.items():
        if digest in revisions:
            tagged.setdefault(digest, []).append(tag)
    roots = list(tagged) + [d for d in revisions if d not in reached and d not in tagged]
    found: list[Image] = []
    covered: set[Digest] = set()
    for root in roots:
        manifests: set[Digest] = set()
        todo = [root]
        while todo:
            digest = todo.pop()
            if digest in manifests or digest not in revisions:
                continue
            manifests.add(digest)
            todo.extend(revisions[digest].children)
        blobs = set(manifests)
        for digest in manifests:
            blobs.update(revisions[digest].blobs)
        covered |= blobs
        found.append(
            Image(
                scan.name,
                scan.origin,
                root,
                tuple(sorted(tagged.get(root, ()))),
                frozenset(manifests),
                frozenset(blobs),
                max(revisions[d].mtime for d in manifests),
            )
        )
    for digest in sorted(scan.linked - covered, key=str):
        found.append(
            Image(
                scan.name,
                scan.origin,
                None,
                (),
                frozenset(),
                frozenset({digest}),
                stats[digest][1] if digest in stats else 0.0,
            )
        )
    return found


async def scan(
    layout: Layout,
    origin_of: Callable[[str], str | None],
    stats: BlobStats | None = None,
) -> Inventory:
    """Walk the store; `stats` from an earlier scan are reused (and brought up to date)."""
    known: BlobStats = stats if stats is not None else {}
    repositories: list[RepositoryScan] = []
    async for name, children in layout.repositories():
        repositories.append(await _repository(layout, name, children, origin_of(name)))
    wanted = {d for r in repositories for d in referenced(r)}
    for gone in set(known) - wanted:
        del known[gone]
    missing = [d for d in wanted if d not in known]
    infos = await map_bounded(lambda d: layout.stat(paths.blob_data(d)), missing)
    for digest, info in zip(missing, infos, strict=True):
        if info is not None:
            known[digest] = (info.size, info.mtime)
    return Inventory(repositories, known)


def referenced(scan: RepositoryScan) -> set[Digest]:
    """Every blob the repository references or links (its manifests' own included)."""
    found = set(scan.linked)
    for revision in scan.revisions.values():
        found.add(revision.digest)
        found.update(revision.blobs)
    return found


async def _repository(
    layout: Layout, name: str, children: list[str], origin: str | None
) -> RepositoryScan:
    has_manifests = "_manifests" in children
    tags: dict[str, Digest] = {}
    revisions: dict[Digest, Revision] = {}
    linked: set[Digest] = set()
    if "_layers" in children:
        base = f"{paths.REPOSITORIES}/{name}/_layers"
        linked = {d for _, d in await layout.digests_under(base)}
    if not has_manifests:
        candidates = list(linked)
        present = await map_bounded(lambda d: layout.stat(paths.layer_link(name, d)), candidates)
        linked = {d for d, info in zip(candidates, present, strict=True) if info is not None}
        return RepositoryScan(name, origin, tags, revisions, linked)
    tag_names = await layout.listdir(paths.tags_dir(name))
    targets = await map_bounded(
        lambda tag: layout.read_link(paths.tag_current(name, tag)), tag_names
    )
    tags = {tag: d for tag, d in zip(tag_names, targets, strict=True) if d is not None}
    listed = await layout.digests_under(f"{paths.manifests_dir(name)}/revisions")

    async def revision(digest: Digest) -> Revision | None:
        link = await layout.stat(paths.revision_link(name, digest))
        if link is None:
            return None  # a deleted manifest: its directory stays, its link does not
        raw = await layout.get(paths.blob_data(digest))
        try:
            refs = references_of(raw) if raw is not None else None
        except UnreadableManifest:
            refs = None
        if refs is None:
            return Revision(digest, (), (), link.mtime)
        return Revision(
            digest,
            tuple(digest_of(k) for k in refs.blobs),
            tuple(digest_of(k) for k in refs.children),
            link.mtime,
        )

    for found in await map_bounded(revision, [d for _, d in listed]):
        if found is not None:
            revisions[found.digest] = found
    # A removed link leaves its directory (only link files go, as in registry:2): the
    # links no manifest accounts for are checked one by one.
    referenced_here = {d for r in revisions.values() for d in (r.digest, *r.blobs)}
    loose = sorted(linked - referenced_here, key=str)
    present = await map_bounded(lambda d: layout.stat(paths.layer_link(name, d)), loose)
    linked -= {d for d, info in zip(loose, present, strict=True) if info is None}
    return RepositoryScan(name, origin, tags, revisions, linked)
