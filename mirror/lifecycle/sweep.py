"""The sweep phase: untagged manifests first, then unmarked blobs and their layer links.

Order matters for a crash in the middle: a manifest revision goes before the blobs it
referenced, and a blob's layer links go before its data, so an interrupted collection
leaves only unreferenced content behind, which the next run removes.

Untagged manifests are checked again per repository just before removal: the tags are
read anew, and every candidate the guard keeps (modified or used within the grace
delay) keeps the children and referrers it brings along too; whatever is kept puts
its references back into the marked set before any blob is swept.
"""

from __future__ import annotations

from dataclasses import dataclass

from mirror.digests import Digest
from mirror.lifecycle.digestset import digest_of, key_from, key_of
from mirror.lifecycle.guard import SweepGuard
from mirror.lifecycle.layout import BoundedTasks, Layout, map_bounded
from mirror.lifecycle.mark import MarkResult, UntaggedManifest, keep_closure
from mirror.lifecycle.references import References
from mirror.lifecycle.report import Events
from mirror.store import paths
from mirror.store.driver import StorageDriverError

BATCH = 256  # unmarked blobs or untagged manifests examined at once
BATCH_CALL = 32  # deleted under one set of deletion marks
DELETES_IN_FLIGHT = 2  # such batches at once
REPOSITORIES_IN_FLIGHT = 16  # repositories whose untagged manifests are removed at once


class Sweeper:
    def __init__(
        self,
        layout: Layout,
        events: Events,
        guard: SweepGuard,
        marks: MarkResult,
        *,
        dry_run: bool,
    ) -> None:
        self._layout = layout
        self._events = events
        self._guard = guard
        self._marks = marks
        self._dry_run = dry_run

    async def manifests(self) -> None:
        async with BoundedTasks(REPOSITORIES_IN_FLIGHT) as repositories:
            for name, untagged in self._marks.untagged.items():
                await repositories.submit(self._repository_manifests(name, untagged))

    async def _repository_manifests(self, name: str, untagged: list[UntaggedManifest]) -> None:
        layout = self._layout
        graph: dict[bytes, References | None] = {key_of(m.digest): m.references for m in untagged}
        tag_names = await layout.listdir(paths.tags_dir(name))
        targets = await map_bounded(
            lambda tag: layout.read_link(paths.tag_current(name, tag)), tag_names
        )
        seeds = {key_of(d) for d in targets if d is not None and key_of(d) in graph}

        async def recent(manifest: UntaggedManifest) -> str | None:
            link = await layout.stat(paths.revision_link(name, manifest.digest))
            mtimes = () if link is None else (link.mtime,)
            return await self._guard.recent(manifest.digest, mtimes)

        for manifest, reason in zip(untagged, await map_bounded(recent, untagged), strict=True):
            if reason is not None:
                self._events.kept("manifest", manifest.digest, reason)
                seeds.add(key_of(manifest.digest))
        kept = keep_closure(seeds, graph)
        removable = [m for m in untagged if key_of(m.digest) not in kept]
        for manifest in untagged:
            if key_of(manifest.digest) in kept:
                self._mark(manifest)
        history: dict[bytes, list[str]] = {}
        if removable:
            indexes = await layout.digests_under_many(
                [f"{paths.tag_dir(name, tag)}/index" for tag in tag_names]
            )
            for tag, listed in zip(tag_names, indexes, strict=True):
                for key, _ in listed:
                    history.setdefault(key, []).append(tag)
        for start in range(0, len(removable), BATCH):
            batch = removable[start : start + BATCH]
            removed = await self._remove_manifests(name, batch, history)
            for manifest, done in zip(batch, removed, strict=True):
                if not done:
                    self._mark(manifest)

    def _mark(self, manifest: UntaggedManifest) -> None:
        marked = self._marks.marked
        marked.add(manifest.digest)
        if manifest.references is not None:
            for key in manifest.references.blobs + manifest.references.children:
                marked.add_key(key)

    async def _remove_manifests(
        self, name: str, batch: list[UntaggedManifest], history: dict[bytes, list[str]]
    ) -> list[bool]:
        """Remove revisions with their tag history entries (registry:2 removes them too)
        and referrers entries; False for each one that stays after all (kept by the
        final check, or a driver error)."""
        if self._dry_run:
            for manifest in batch:
                self._events.manifest_removed(name, manifest.digest)
            return [True] * len(batch)
        layout = self._layout
        async with self._guard.deleting([m.digest for m in batch]) as reasons:
            going = []
            for manifest, reason in zip(batch, reasons, strict=True):
                if reason is not None:
                    self._events.kept("manifest", manifest.digest, reason)
                else:
                    going.append(manifest)
            # Like registry:2, only link files go: removing their directories could
            # race with a push writing a new link into one. The revision link last: a
            # manifest that keeps it stays whole.
            extra = [
                paths.tag_index_link(name, tag, m.digest)
                for m in going
                for tag in history.get(key_of(m.digest), ())
            ] + [
                paths.referrer_link(name, digest_of(m.references.subject), m.digest)
                for m in going
                if m.references is not None and m.references.subject is not None
            ]
            for path, result in zip(extra, await layout.delete_many(extra), strict=True):
                if isinstance(result, StorageDriverError):
                    self._events.error(f"removing {path} failed: {result}")
            results = await layout.delete_many([paths.revision_link(name, m.digest) for m in going])
        gone: set[int] = set()
        for manifest, result in zip(going, results, strict=True):
            if isinstance(result, StorageDriverError):
                self._events.error(f"{name}: removing manifest {manifest.digest} failed: {result}")
            else:
                gone.add(id(manifest))
                self._events.manifest_removed(name, manifest.digest)
        return [id(m) in gone for m in batch]

    async def blobs(self) -> None:
        marked = self._marks.marked
        # Deletions of one batch run while the next is listed and examined (a worker
        # thread deleting while the event loop stats, on a local file system).
        candidates: list[Digest] = []
        async with BoundedTasks(DELETES_IN_FLIGHT) as deleting:
            async for algorithm, names in self._layout.blob_directories():
                for hex_ in names:
                    key = key_from(algorithm, hex_)
                    if key is None:
                        self._events.warning(f"blob directory {algorithm}/{hex_} is not a digest")
                    elif not marked.has_key(key):
                        candidates.append(Digest(algorithm, hex_))
                # Batches span several prefix directories: deletions in one directory
                # wait for each other in the kernel (on the local file system).
                if len(candidates) >= BATCH:
                    await self._sweep_blobs(candidates, deleting)
                    candidates = []
            await self._sweep_blobs(candidates, deleting)

    async def _sweep_blobs(self, digests: list[Digest], deleting: BoundedTasks) -> None:
        examined = await map_bounded(self._examine, digests)
        found = [candidate for candidate in examined if candidate is not None]
        if self._dry_run:
            for candidate in found:
                self._blob_removed(candidate)
            return
        for start in range(0, len(found), BATCH_CALL):
            await deleting.submit(self._delete_blobs(found[start : start + BATCH_CALL]))

    async def _examine(self, digest: Digest) -> _Candidate | None:
        """The blob as a deletion candidate, or None when it must stay (no content yet,
        or modified or used within the grace delay)."""
        layout = self._layout
        data = await layout.stat(paths.blob_data(digest))
        if data is None:
            return None  # no content yet: an ingest in progress, or an empty directory
        repositories = self._marks.links.get(key_of(digest), [])
        links = [await layout.stat(paths.layer_link(name, digest)) for name in repositories]
        mtimes = [data.mtime] + [link.mtime for link in links if link is not None]
        reason = await self._guard.recent(digest, mtimes)
        if reason is not None:
            self._events.kept("blob", digest, reason)
            return None
        linked = [name for name, link in zip(repositories, links, strict=True) if link]
        return _Candidate(digest, data.size, linked)

    async def _delete_blobs(self, batch: list[_Candidate]) -> None:
        layout = self._layout
        async with self._guard.deleting([c.digest for c in batch]) as reasons:
            going = []
            for candidate, reason in zip(batch, reasons, strict=True):
                if reason is not None:
                    self._events.kept("blob", candidate.digest, reason)
                else:
                    going.append(candidate)
            # Links before content: a crash in between leaves an unlinked blob. A blob
            # whose link could not be removed stays, to stay consistent.
            links = [(c, paths.layer_link(name, c.digest)) for c in going for name in c.linked]
            failed: set[int] = set()
            for (candidate, path), result in zip(
                links, await layout.delete_many([path for _, path in links]), strict=True
            ):
                if isinstance(result, StorageDriverError):
                    self._events.error(f"removing {path} failed: {result}")
                    failed.add(id(candidate))
            going = [c for c in going if id(c) not in failed]
            results = await layout.delete_many([paths.blob_dir(c.digest) for c in going])
        for candidate, result in zip(going, results, strict=True):
            if isinstance(result, StorageDriverError):
                self._events.error(f"removing blob {candidate.digest} failed: {result}")
            else:
                self._blob_removed(candidate)

    def _blob_removed(self, candidate: _Candidate) -> None:
        self._events.blob_removed(candidate.digest, candidate.size)
        for name in candidate.linked:
            self._events.link_removed(name, candidate.digest)


@dataclass(frozen=True, slots=True)
class _Candidate:
    digest: Digest
    size: int
    linked: list[str]
