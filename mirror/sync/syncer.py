"""One sync pass over a target, through the pull-through repositories.

For each repository: the upstream's tag list, filtered. For each tag: the pull path's
`get_manifest` (within the freshness TTL nothing is asked; after it one HEAD, and a GET
only when the tag moved), then the index children of the wanted platforms, then every
blob not cached yet, `concurrency` at a time, through the single-flight downloads. A tag
is marked synced once all of that is cached.

Upstream limits: before each tag the reported quota (`ratelimit-remaining`) is checked
against `reserve`; a 429 pauses the target until its Retry-After; an upstream that fails
(or whose breaker is open: the view then serves stale or answers 503) ends the target's
pass. The next pass is the job's business.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from mirror.cache.pullthrough.view import PullThroughView
from mirror.digests import Digest
from mirror.errors import (
    BlobUnknown,
    ManifestUnknown,
    NameInvalid,
    RegistryError,
    TooManyRequests,
)
from mirror.metrics import METRICS, MetricsRegistry
from mirror.sync.filters import TagFilter, expand, is_glob, platform_of, platform_wanted
from mirror.sync.marks import SyncMarks
from mirror.types import Manifest, Reference
from mirror.upstream.api import (
    Upstream,
    UpstreamError,
    UpstreamNotFound,
    UpstreamRateLimited,
)

log = logging.getLogger("mirror.sync")

MARK_INTERVALS = 3  # a mark outlives this many missed passes
MIN_MARK_TTL = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class SyncTarget:
    """What to keep cached: `repositories` (names at the upstream; globs expanded with
    its catalog) of the configured upstream `upstream`, their tags that `tags` selects,
    of an index the `platforms` (os/arch[/variant]; empty: all), every `interval` s."""

    upstream: str
    repositories: tuple[str, ...]
    tags: TagFilter = field(default_factory=TagFilter)
    platforms: tuple[str, ...] = ()
    interval: float = 3600.0

    @property
    def key(self) -> str:
        """Names this target's schedule (the same on every replica with this config)."""
        doc = [self.upstream, self.repositories, self.tags.regex, self.tags.semver]
        doc.append(self.platforms)
        return hashlib.sha256(json.dumps(doc).encode()).hexdigest()[:16]

    @property
    def mark_ttl(self) -> float:
        return max(self.interval * MARK_INTERVALS, MIN_MARK_TTL)


@dataclass(slots=True)
class SyncReport:
    target: SyncTarget
    repositories: int = 0
    tags: int = 0  # synced (unchanged or updated)
    updated: int = 0  # of those, new or moved
    blobs: int = 0  # downloaded
    failures: list[str] = field(default_factory=list)
    stopped: str | None = None  # why the pass ended early
    retry_after: float | None = None  # the upstream's, after a 429

    @property
    def ok(self) -> bool:
        return not self.failures and self.stopped is None

    def summary(self) -> str:
        text = (
            f"{self.target.upstream}: {self.repositories} repositories, {self.tags} tags "
            f"({self.updated} new or moved), {self.blobs} blobs downloaded"
        )
        if self.failures:
            text += f", {len(self.failures)} failed ({self.failures[0]}"
            text += f" and {len(self.failures) - 1} more)" if len(self.failures) > 1 else ")"
        if self.stopped:
            text += f"; stopped: {self.stopped}"
        return text


class CacheViews(Protocol):
    """Where the pull-through repositories come from (`MirrorResolver`)."""

    def upstream(self, name: str) -> Upstream: ...

    def cache_view(self, upstream: str, remote: str) -> PullThroughView: ...


class _Stop(Exception):
    """Ends the target's pass (the reason is in the report)."""


class SyncMetrics:
    def __init__(self, metrics: MetricsRegistry) -> None:
        self.tags = metrics.counter(
            "mirror_sync_tags_total", "Tags checked by sync", ("upstream", "result")
        )
        self.blobs = metrics.counter(
            "mirror_sync_blobs_total", "Blobs sync downloaded", ("upstream",)
        )


class Syncer:
    def __init__(
        self,
        views: CacheViews,
        marks: SyncMarks,
        *,
        concurrency: int = 4,
        reserve: int = 10,
        metrics: MetricsRegistry = METRICS,
    ) -> None:
        self.views = views
        self.marks = marks
        self.concurrency = max(concurrency, 1)
        self.reserve = reserve
        self.metrics = SyncMetrics(metrics)

    async def sync(
        self, target: SyncTarget, stop: Callable[[], bool] = lambda: False
    ) -> SyncReport:
        """One pass over `target`; never raises for what the upstream or the store says
        (it is in the report). `stop()` true ends the pass between tags."""
        report = SyncReport(target)
        try:
            for remote in await self._repositories(target, report):
                report.repositories += 1
                await self._repository(target, remote, report, stop)
        except _Stop:
            pass
        log.info("sync %s", report.summary())
        return report

    async def _repositories(self, target: SyncTarget, report: SyncReport) -> list[str]:
        names = [name for name in target.repositories if not is_glob(name)]
        if len(names) == len(target.repositories):
            return names
        try:
            catalog = await self.views.upstream(target.upstream).catalog()
        except UpstreamError as exc:
            report.failures.append(f"the catalog of {target.upstream} ({_reason(exc)})")
            return names
        return sorted({*names, *expand(target.repositories, catalog)})

    async def _repository(
        self, target: SyncTarget, remote: str, report: SyncReport, stop: Callable[[], bool]
    ) -> None:
        try:
            view = self.views.cache_view(target.upstream, remote)
        except NameInvalid as exc:
            report.failures.append(f"{remote}: {exc.message}")
            return
        try:
            tags = await view.upstream.list_tags(view.remote)
        except UpstreamNotFound:
            report.failures.append(f"{remote}: no such repository at {target.upstream}")
            return
        except UpstreamRateLimited as exc:
            self._stop(report, "rate limited (429)", exc.retry_after)
        except UpstreamError as exc:
            self._stop(report, f"listing the tags of {remote} failed ({_reason(exc)})")
        for tag in (tag for tag in tags if target.tags.matches(tag)):
            if stop():
                self._stop(report, "lease lost or shutting down")
            self._check_quota(view, report)
            await self._tag(target, view, tag, report)

    def _check_quota(self, view: PullThroughView, report: SyncReport) -> None:
        limit = view.upstream.ratelimit
        if limit is not None and limit.remaining is not None and limit.remaining <= self.reserve:
            # Not until the window's end: the quota comes back bit by bit; the job tries
            # again a quarter interval later, which costs a tag list to find out.
            self._stop(
                report,
                f"{limit.remaining} pulls left in the upstream's window, "
                f"{self.reserve} kept for clients",
            )

    async def _tag(
        self, target: SyncTarget, view: PullThroughView, tag: str, report: SyncReport
    ) -> None:
        where = f"{view.remote}:{tag}"
        before = await view.local.tags.get(tag)
        try:
            result = await view.get_manifest(Reference(tag=tag))
            if result.warning is not None:
                # Served from the cache: the upstream failed (or its breaker is open).
                self._stop(report, f"upstream {target.upstream} failing at {where}")
            images = await self._images(view, result.manifest, target.platforms)
            digests = list(dict.fromkeys(d for m in images for d in _blobs(m)))
            fetched = await self._blobs(view, digests)
        except TooManyRequests as exc:
            self._stop(report, f"rate limited (429) at {where}", exc.retry_after)
        except (ManifestUnknown, BlobUnknown) as exc:
            self.metrics.tags.inc(target.upstream, "failed")
            report.failures.append(f"{where}: {exc.message}")
            return
        except RegistryError as exc:
            self.metrics.tags.inc(target.upstream, "failed")
            self._stop(report, f"{where}: {exc.message}")
        digest = result.manifest.digest
        changed = before != digest
        report.tags += 1
        report.updated += changed
        report.blobs += fetched
        self.metrics.tags.inc(target.upstream, "updated" if changed else "unchanged")
        self.metrics.blobs.inc(target.upstream, amount=fetched)
        try:
            await self.marks.mark(view.name, tag, digest, time.time(), target.mark_ttl)
        except Exception:
            log.warning("sync mark of %s not written", where, exc_info=True)

    async def _images(
        self, view: PullThroughView, manifest: Manifest, platforms: tuple[str, ...]
    ) -> list[Manifest]:
        """The image manifests to cache: `manifest`, or its children of `platforms`."""
        if not manifest.is_index:
            return [manifest]
        images: list[Manifest] = []
        for child in manifest.manifests:
            if not platform_wanted(platform_of(child.platform), platforms):
                continue
            fetched = await view.get_manifest(Reference(digest=child.digest))
            images.extend(await self._images(view, fetched.manifest, platforms))
        return images

    async def _blobs(self, view: PullThroughView, digests: list[Digest]) -> int:
        """Cache `digests`, `concurrency` at a time; how many were downloaded."""
        gate = asyncio.Semaphore(self.concurrency)

        async def one(digest: Digest) -> bool:
            async with gate:
                return await view.prefetch(digest)

        results = await asyncio.gather(*(one(d) for d in digests), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return sum(1 for result in results if result is True)

    def _stop(self, report: SyncReport, why: str, retry_after: str | None = None) -> None:
        report.stopped = why
        report.retry_after = _seconds(retry_after)
        raise _Stop(why)


def _blobs(manifest: Manifest) -> list[Digest]:
    return [
        blob.digest
        for blob in manifest.blobs
        if "foreign" not in blob.media_type and "nondistributable" not in blob.media_type
    ]


def _reason(exc: UpstreamError) -> str:
    return f"status {exc.status}" if exc.status else type(exc).__name__


def _seconds(retry_after: str | None) -> float | None:
    if retry_after is None:
        return None
    try:
        return max(float(retry_after), 0.0)
    except ValueError:
        return None  # an HTTP date: the next pass waits its interval
