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

from mirror.digests import Digest
from mirror.lifecycle.digestset import digest_of, key_from, key_of
from mirror.lifecycle.guard import SweepGuard
from mirror.lifecycle.layout import Layout, map_bounded
from mirror.lifecycle.mark import MarkResult, UntaggedManifest, keep_closure
from mirror.lifecycle.references import References
from mirror.lifecycle.report import Events
from mirror.store import paths
from mirror.store.driver import StorageDriverError

BATCH = 256  # unmarked blobs examined and deleted concurrently


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
        for name, untagged in self._marks.untagged.items():
            await self._repository_manifests(name, untagged)

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
            indexes = await map_bounded(
                lambda tag: layout.digests_under(f"{paths.tag_dir(name, tag)}/index"), tag_names
            )
            for tag, listed in zip(tag_names, indexes, strict=True):
                for key, _ in listed:
                    history.setdefault(key, []).append(tag)
        removed = await map_bounded(
            lambda m: self._remove_manifest(name, m, history.get(key_of(m.digest), [])),
            removable,
        )
        for manifest, done in zip(removable, removed, strict=True):
            if not done:
                self._mark(manifest)

    def _mark(self, manifest: UntaggedManifest) -> None:
        marked = self._marks.marked
        marked.add(manifest.digest)
        if manifest.references is not None:
            for key in manifest.references.blobs + manifest.references.children:
                marked.add_key(key)

    async def _remove_manifest(
        self, name: str, manifest: UntaggedManifest, tag_names: list[str]
    ) -> bool:
        """Remove one revision, its tag history entries (under `tag_names`) and its
        referrers entry; False when it stays after all (kept by the final check, or a
        driver error)."""
        digest = manifest.digest
        if self._dry_run:
            self._events.manifest_removed(name, digest)
            return True
        try:
            async with self._guard.deleting(digest) as reason:
                if reason is not None:
                    self._events.kept("manifest", digest, reason)
                    return False
                await self._remove_revision(name, manifest, tag_names)
        except StorageDriverError as exc:
            self._events.error(f"{name}: removing manifest {digest} failed: {exc}")
            return False
        self._events.manifest_removed(name, digest)
        return True

    async def _remove_revision(
        self, name: str, manifest: UntaggedManifest, tag_names: list[str]
    ) -> None:
        layout, digest = self._layout, manifest.digest
        # Tag history entries first (registry:2 removes them too), then the revision.
        # Like registry:2, only the link files go: removing their directories could
        # race with a push writing a new link into one.
        await map_bounded(
            lambda tag: layout.delete(paths.tag_index_link(name, tag, digest)),
            tag_names,
        )
        await layout.delete(paths.revision_link(name, digest))
        refs = manifest.references
        if refs is not None and refs.subject is not None:
            subject = digest_of(refs.subject)
            await layout.delete(paths.referrer_link(name, subject, digest))

    async def blobs(self) -> None:
        marked = self._marks.marked
        candidates: list[Digest] = []
        async for algorithm, names in self._layout.blob_directories():
            for hex_ in names:
                key = key_from(algorithm, hex_)
                if key is None:
                    self._events.warning(f"blob directory {algorithm}/{hex_} is not a digest")
                elif not marked.has_key(key):
                    candidates.append(Digest(algorithm, hex_))
            # Batches span several prefix directories: deletions in one directory wait
            # for each other in the kernel (on the local file system), others do not.
            if len(candidates) >= BATCH:
                await map_bounded(self._blob, candidates)
                candidates = []
        await map_bounded(self._blob, candidates)

    async def _blob(self, digest: Digest) -> None:
        layout = self._layout
        data = await layout.stat(paths.blob_data(digest))
        if data is None:
            return  # no content yet: an ingest in progress, or an empty directory
        repositories = self._marks.links.get(key_of(digest), [])
        links = await map_bounded(
            lambda name: layout.stat(paths.layer_link(name, digest)), repositories
        )
        mtimes = [data.mtime] + [link.mtime for link in links if link is not None]
        reason = await self._guard.recent(digest, mtimes)
        if reason is not None:
            self._events.kept("blob", digest, reason)
            return
        linked = [name for name, link in zip(repositories, links, strict=True) if link]
        if self._dry_run:
            self._blob_removed(digest, data.size, linked)
            return
        try:
            async with self._guard.deleting(digest) as reason:
                if reason is not None:
                    self._events.kept("blob", digest, reason)
                    return
                for name in linked:
                    await layout.delete(paths.layer_link(name, digest))
                await layout.delete(paths.blob_dir(digest))
        except StorageDriverError as exc:
            self._events.error(f"removing blob {digest} failed: {exc}")
            return
        self._blob_removed(digest, data.size, linked)

    def _blob_removed(self, digest: Digest, size: int, linked: list[str]) -> None:
        self._events.blob_removed(digest, size)
        for name in linked:
            self._events.link_removed(name, digest)
