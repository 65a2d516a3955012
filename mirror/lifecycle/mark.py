"""The mark phase: every blob a kept manifest needs, repository by repository.

Kept manifests: every manifest revision, or with `delete_untagged` only the tagged ones
and what they bring along - the children of a kept index and the referrers (manifests
whose `subject` is a kept manifest), transitively. Marked: each kept manifest's own blob
and everything it references (config, layers, children). A tag whose revision link is
missing still keeps its target's blob and references (conservative, and registry:2
stores can have them).

Repositories are scanned concurrently, a bounded number at a time; each holds only its
own manifest graph while it is scanned. What outlives the scan is the marked set, the
untagged manifests to remove (with their references, in case the sweep keeps them
after all) and the layer links that point at not-yet-marked blobs (usually few).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from mirror.digests import Digest
from mirror.lifecycle.digestset import DigestSet, digest_of, key_of
from mirror.lifecycle.layout import BoundedTasks, Layout, map_bounded
from mirror.lifecycle.references import References, UnreadableManifest, references_of
from mirror.lifecycle.report import Events
from mirror.store import paths

REPOSITORY_WORKERS = 32


@dataclass(frozen=True, slots=True)
class UntaggedManifest:
    """A manifest revision the mark phase did not keep."""

    repository: str
    digest: Digest
    references: References | None


@dataclass
class MarkResult:
    marked: DigestSet = field(default_factory=DigestSet)
    # repository -> its untagged manifests (only with delete_untagged)
    untagged: dict[str, list[UntaggedManifest]] = field(default_factory=dict)
    # blob key -> repositories with a layer link to it, for blobs unmarked when seen
    links: dict[bytes, list[str]] = field(default_factory=dict)


def keep_closure(roots: Iterable[bytes], graph: Mapping[bytes, References | None]) -> set[bytes]:
    """`roots` plus, transitively, the children of kept indexes and the referrers of kept
    manifests, among the manifests of `graph` (roots outside it are kept as they are)."""
    referrers: dict[bytes, list[bytes]] = {}
    for key, refs in graph.items():
        if refs is not None and refs.subject is not None:
            referrers.setdefault(refs.subject, []).append(key)
    kept: set[bytes] = set()
    pending = list(roots)
    while pending:
        key = pending.pop()
        if key in kept:
            continue
        kept.add(key)
        refs = graph.get(key)
        if refs is not None:
            pending += [child for child in refs.children if child in graph]
        pending += referrers.get(key, ())
    return kept


class Marker:
    def __init__(self, layout: Layout, events: Events, *, delete_untagged: bool) -> None:
        self._layout = layout
        self._events = events
        self._delete_untagged = delete_untagged
        self.result = MarkResult()

    async def run(self) -> MarkResult:
        """Scan every repository; driver errors propagate (and must stop the sweep)."""
        async with BoundedTasks(REPOSITORY_WORKERS) as scans:
            async for name, children in self._layout.repositories():
                await scans.submit(self._repository(name, children))
        return self.result

    async def _repository(self, name: str, children: list[str]) -> None:
        self._events.report.repositories += 1
        lines = [name]
        tags, revisions, graph, linked = await self._listings(name, children)
        roots = [key_of(d) for d in tags]
        kept = keep_closure(roots, graph) if self._delete_untagged else graph.keys()
        marked = self.result.marked
        for key in kept:
            lines.append(f"{name}: marking manifest {digest_of(key)} ")
            marked.add_key(key)
            refs = graph.get(key)
            for ref in refs.blobs + refs.children if refs is not None else ():
                if marked.add_key(ref):
                    lines.append(f"{name}: marking blob {digest_of(ref)}")
        if self._delete_untagged:
            untagged = [
                UntaggedManifest(name, digest_of(key), graph[key]) for key in revisions - kept
            ]
            if untagged:
                self.result.untagged[name] = untagged
        await self._links(name, linked)
        self._events.lines(lines)
        self._events.report.manifests_marked += len(kept)

    async def _listings(self, name: str, children: list[str]) -> _Listings:
        """A repository's tag targets, the keys of its manifest revisions (those with
        their link present), the references of both, and its layer links. The listings
        go in two batched rounds (on an object store each listing is a round trip)."""
        layout = self._layout
        has_manifests = "_manifests" in children
        bases = [f"{paths.manifests_dir(name)}/revisions"] if has_manifests else []
        if "_layers" in children:
            bases.append(f"{paths.REPOSITORIES}/{name}/_layers")
        singles = [paths.tags_dir(name)] if has_manifests else []
        first = await layout.listdirs(singles + bases)
        tag_names = first[0] if has_manifests else []
        listed = await layout.digests_in(bases, first[len(singles) :])
        revision_dirs = listed[0] if has_manifests else []
        linked = listed[-1] if "_layers" in children else []
        targets = await map_bounded(
            lambda tag: layout.read_link(paths.tag_current(name, tag)), tag_names
        )

        async def revision(digest: Digest) -> tuple[bool, References | None]:
            # A revision directory without its link is a deleted manifest (registry:2
            # and mirror both delete just the link file).
            if await layout.stat(paths.revision_link(name, digest)) is None:
                return False, None
            return True, await self._read(digest)

        graph: dict[bytes, References | None] = {}
        revisions: set[bytes] = set()
        read = await map_bounded(revision, [digest for _, digest in revision_dirs])
        for (key, _), (present, refs) in zip(revision_dirs, read, strict=True):
            if present:
                revisions.add(key)
                graph[key] = refs
        tags = [d for d in targets if d is not None]
        dangling = list({key_of(d): d for d in tags if key_of(d) not in graph}.items())
        for (key, _), refs in zip(
            dangling, await map_bounded(self._read, [d for _, d in dangling]), strict=True
        ):
            graph[key] = refs
        return tags, revisions, graph, linked

    async def _read(self, digest: Digest) -> References | None:
        raw = await self._layout.get(paths.blob_data(digest))
        if raw is None:
            self._events.warning(f"manifest {digest} has no content in the blob store")
            return None
        try:
            return references_of(raw)
        except UnreadableManifest as exc:
            self._events.warning(f"manifest {digest} is unreadable ({exc}); kept as it is")
            return None

    async def _links(self, name: str, linked: list[tuple[bytes, Digest]]) -> None:
        """Remember the layer links to blobs not marked so far (the sweep removes those
        whose blob it deletes); usually few, as a repository references what it links."""
        marked = self.result.marked
        unmarked = [(key, d) for key, d in linked if not marked.has_key(key)]
        present = await map_bounded(
            lambda item: self._layout.stat(paths.layer_link(name, item[1])), unmarked
        )
        for (key, _), info in zip(unmarked, present, strict=True):
            if info is not None:
                self.result.links.setdefault(key, []).append(name)


_Listings = tuple[
    list[Digest], set[bytes], dict[bytes, References | None], list[tuple[bytes, Digest]]
]
