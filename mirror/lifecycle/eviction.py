"""Cache eviction: `proxy.ttl` (per upstream) and the size cap `cache.maxsize`.

One pass (`Evictor.run_once`) takes the inventory of the store, cuts every cache
repository into images (`inventory.images`: a root manifest with all it reaches, or a
loose blob) and orders them by last use: the newest time the access log has for any
of their manifests or of the blobs no other image has (every hit refreshes it), or when
they were stored. Then

1. an image unused for its upstream's `ttl` goes;
2. while the cached bytes exceed `maxsize`, the least recently used image goes.

What an image frees is the blobs no other image (of any repository) needs; bytes that
a local repository also uses are local, not cached, and never removed. Never evicted:
local repositories, tags that sync keeps (`sync:tag:` marks: sync refreshes them),
images in use (a blob being sent by this process, or anything used within `protect`
seconds by any process: the access log's flush interval and a reader's refresh are far
shorter). Removal goes tags, then manifest revisions, then layer links, then blob data,
the last under the collector's deletion marks and a final re-read of the access log
(`guard.SweepGuard`), so a blob used, mounted or pushed meanwhile stays.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from mirror.coordination.accesslog import AccessLog, DeletionMarks
from mirror.digests import Digest
from mirror.errors import BlobUnknown, ManifestUnknown
from mirror.lifecycle.guard import SweepGuard
from mirror.lifecycle.inventory import BlobStats, Image, Inventory, images, scan
from mirror.lifecycle.layout import Layout
from mirror.store.driver import StorageDriverError
from mirror.store.store import Store
from mirror.store.tracking import ContentTracker
from mirror.sync.marks import SyncMarks

log = logging.getLogger("mirror.eviction")

PROTECT = 6.0  # > a reader's refresh (2 s) + the access log's flush (1 s), with margin
CONCURRENCY = 16


@dataclass(frozen=True, slots=True)
class EvictionPolicy:
    maxsize: int = 0  # bytes of cached content at most; 0: no cap
    ttls: Mapping[str, float] = field(default_factory=dict)  # upstream prefix -> s; 0: none
    protect: float = PROTECT

    @property
    def active(self) -> bool:
        return self.maxsize > 0 or any(ttl > 0 for ttl in self.ttls.values())


@dataclass(slots=True)
class EvictionReport:
    usage_before: int = 0  # cached bytes found
    usage: int = 0  # cached bytes left
    evicted: Counter[str] = field(default_factory=Counter)  # images, by reason
    bytes_evicted: int = 0
    kept_in_use: int = 0  # candidates that stayed because they were in use
    errors: int = 0
    removed: list[str] = field(default_factory=list)  # what went, `repo:tag` or `repo@digest`


@dataclass(slots=True)
class _Plan:
    """The images of one pass with the reference counts their removal changes."""

    inventory: Inventory
    cached: list[Image]
    local: set[Digest]  # blobs some local repository uses: never removed
    users: Counter[Digest]  # cached images that need each blob
    in_repository: dict[str, Counter[Digest]]  # per repository: its images needing each
    usage: int

    def freed_by(self, image: Image) -> list[Digest]:
        users = self.users
        return [d for d in image.blobs if users[d] == 1 and d not in self.local]

    def drop(self, image: Image) -> int:
        """Take `image` out of the counts; the cached bytes this frees."""
        freed = self.inventory.size_of(self.freed_by(image))
        counts = self.in_repository[image.repository]
        for digest in image.blobs:
            self.users[digest] -= 1
            counts[digest] -= 1
        self.usage -= freed
        return freed


class Evictor:
    def __init__(
        self,
        store: Store,
        access_log: AccessLog,
        marks: DeletionMarks,
        policy: EvictionPolicy,
        *,
        origin_of: Callable[[str], str | None],
        sync_marks: SyncMarks | None = None,
        tracker: ContentTracker | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.policy = policy
        self._log = access_log
        self._marks = marks
        self._origin_of = origin_of
        self._sync = sync_marks
        self._tracker = tracker or store.tracker
        self._clock = clock
        self._stats: BlobStats = {}

    async def run_once(self) -> EvictionReport:
        """One pass; driver errors while removing are counted (the rest goes on)."""
        report = EvictionReport()
        layout = Layout(self.store.driver, CONCURRENCY)
        inventory = await scan(layout, self._origin_of, self._stats)
        plan = self._plan(inventory)
        report.usage_before = plan.usage
        last_use = await self._last_use(plan.cached, plan.users)
        now = self._clock()
        pinned = await self._pinned()
        reading = self._tracker.being_read()

        in_use: set[int] = set()

        def keep(image: Image) -> bool:
            if (image.repository, image.root) in pinned:
                return True
            if last_use[id(image)] >= now - self.policy.protect or image.blobs & reading:
                if id(image) not in in_use:
                    in_use.add(id(image))
                    report.kept_in_use += 1
                return True
            return False

        order = sorted(plan.cached, key=lambda image: last_use[id(image)])
        victims: list[tuple[Image, str]] = []
        chosen: set[int] = set()
        for image in order:
            ttl = self.policy.ttls.get(image.origin or "", 0.0)
            if ttl > 0 and last_use[id(image)] < now - ttl and not keep(image):
                victims.append((image, "ttl"))
                chosen.add(id(image))
                plan.drop(image)
        if self.policy.maxsize > 0:
            for image in order:
                if plan.usage <= self.policy.maxsize:
                    break
                if id(image) in chosen or keep(image):
                    continue
                victims.append((image, "size"))
                chosen.add(id(image))
                plan.drop(image)
        # Counts with every victim dropped: what each removal may take with it.
        guard = SweepGuard(now - self.policy.protect, access_log=self._log, marks=self._marks)
        for image, reason in victims:
            freed = await self._remove(image, plan, guard, report)
            report.evicted[reason] += 1
            report.bytes_evicted += freed
            report.removed.append(image.label())
        report.usage = plan.usage
        if plan.usage > self.policy.maxsize > 0:
            log.warning(
                "cached content is %d bytes, over cache.maxsize (%d): the rest is in use or "
                "kept by sync",
                plan.usage,
                self.policy.maxsize,
            )
        return report

    def _plan(self, inventory: Inventory) -> _Plan:
        cached: list[Image] = []
        local: set[Digest] = set()
        in_repository: dict[str, Counter[Digest]] = {}
        for repository in inventory.repositories:
            found = images(repository, inventory.stats)
            if repository.origin is None:
                for image in found:
                    local |= image.blobs
                local |= repository.linked
                continue
            counts = in_repository.setdefault(repository.name, Counter())
            for image in found:
                counts.update(image.blobs)
            cached += found
        users: Counter[Digest] = Counter()
        for image in cached:
            users.update(image.blobs)
        usage = inventory.size_of(d for d in users if d not in local)
        return _Plan(inventory, cached, local, users, in_repository, usage)

    async def _last_use(self, cached: list[Image], users: Counter[Digest]) -> dict[int, float]:
        # Its manifests and the blobs only it has: a client that resolved the tag long
        # ago and still pulls its layers uses the image. A shared blob would make every
        # image with that base layer look used (one in use is kept when deleting).
        keys = [
            (image, [d for d in image.blobs if d in image.manifests or users[d] == 1])
            for image in cached
        ]
        digests = [d for _, ds in keys for d in ds]
        times = iter(await self._log.last_used(digests)) if digests else iter(())
        found: dict[int, float] = {}
        for image, ds in keys:
            moments = [next(times) for _ in ds]
            found[id(image)] = max([image.mtime, *(m for m in moments if m is not None)])
        return found

    async def _pinned(self) -> set[tuple[str, Digest | None]]:
        if self._sync is None:
            return set()
        return {(mark.repository, mark.digest) async for mark in self._sync.synced()}

    async def _remove(
        self, image: Image, plan: _Plan, guard: SweepGuard, report: EvictionReport
    ) -> int:
        """Remove one chosen image (already dropped from `plan`); the bytes freed."""
        repo = self.store.repository(image.repository)
        counts = plan.in_repository[image.repository]
        try:
            for tag in image.tags:
                if await repo.tags.get(tag) == image.root:
                    try:
                        await repo.tags.untag(tag)
                    except ManifestUnknown:
                        pass
            for digest in image.manifests:
                if counts[digest] <= 0:
                    try:
                        await repo.manifests.delete(digest)
                    except ManifestUnknown:
                        pass
            for digest in image.blobs - image.manifests:
                if counts[digest] <= 0:
                    try:
                        await repo.blobs.unlink(digest)
                    except BlobUnknown:
                        pass
        except StorageDriverError as exc:
            report.errors += 1
            log.warning("evicting %s failed: %s", image.label(), exc)
            return 0
        # Only blobs stored when the pass looked: a blob not stored yet may be a fill in
        # progress, whose partial lives in the blob's directory.
        stored = plan.inventory.stats
        going = [
            d for d in image.blobs if plan.users[d] <= 0 and d not in plan.local and d in stored
        ]
        if not going:
            return 0
        freed = 0
        async with guard.deleting(going) as reasons:
            reading = self._tracker.being_read()
            for digest, reason in zip(going, reasons, strict=True):
                if reason is not None or digest in reading:
                    report.kept_in_use += 1
                    plan.usage += plan.inventory.size_of((digest,))
                    continue
                try:
                    await self.store.blobs.delete(digest)
                except BlobUnknown:
                    continue
                except StorageDriverError as exc:
                    report.errors += 1
                    log.warning("removing blob %s failed: %s", digest, exc)
                    continue
                freed += plan.inventory.size_of((digest,))
        return freed
