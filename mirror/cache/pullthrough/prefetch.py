"""Prefetch: when an image manifest comes through the pull-through path, its missing
blobs start downloading at once, so a cold pull does not cost the sum of its layers'
round trips.

Each blob goes through the normal single-flight fill (`FillManager.complete`): a client's
own GET for it joins the running download instead of starting another. At most
`concurrency` prefetches of one upstream run at a time, in the manifest's order (config
first); a client never waits for them, since its GET starts (or joins) the fill itself
whatever is queued here. Failures are logged and counted, never raised: the client's own
request then meets the upstream as it would have without prefetch.

What prefetch downloaded is counted by whether a client asked for it
(`mirror_prefetch_bytes_total{requested="yes"|"no"}`): "no" once nobody did within
`UNASKED_AFTER` seconds of the download (per process: an ask answered by another worker
process is not seen here).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from mirror.digests import Digest
from mirror.metrics import MetricsRegistry
from mirror.types import Manifest

log = logging.getLogger("mirror.cache")

UNASKED_AFTER = 600.0  # seconds after which a prefetched blob nobody asked for counts "no"
TRACKED = 4096  # prefetched blobs remembered for that; beyond it the oldest count "no"
QUEUED = 256  # blobs waiting per upstream; a manifest beyond that prefetches nothing more

# Downloads a blob into the cache; True when it was downloaded now, False when cached.
Download = Callable[[Digest], Awaitable[bool]]


class PrefetchMetrics:
    def __init__(self, metrics: MetricsRegistry) -> None:
        self.blobs = metrics.counter(
            "mirror_prefetch_blobs_total",
            "Blobs named by a pulled manifest, by what prefetch did (fetched, cached, "
            "joined, failed, dropped)",
            ("result",),
        )
        self.bytes = metrics.counter(
            "mirror_prefetch_bytes_total",
            "Bytes prefetch downloaded, by whether a client then asked for them",
            ("requested",),
        )


class AskTracker:
    """Which prefetched blobs a client has asked for (see the module docstring)."""

    def __init__(self, metrics: PrefetchMetrics, clock: Callable[[], float] = time.monotonic):
        self._metrics = metrics
        self._clock = clock
        self._running: dict[Digest, bool] = {}  # prefetch downloading: asked yet?
        self._done: OrderedDict[Digest, tuple[int, float]] = OrderedDict()  # size, when

    def started(self, digest: Digest) -> None:
        self._running.setdefault(digest, False)

    def asked(self, digest: Digest) -> None:
        """A client asked for `digest` (cached or not)."""
        if digest in self._running:
            self._running[digest] = True
            return
        entry = self._done.pop(digest, None)
        if entry is not None:
            self._metrics.bytes.inc("yes", amount=entry[0])

    def finished(self, digest: Digest, size: int, downloaded: bool) -> None:
        """The prefetch of `digest` ended; `downloaded`: its bytes came from the upstream
        now (a failure, or a blob found cached, has none to count)."""
        asked = self._running.pop(digest, False)
        if not downloaded:
            return
        if asked:
            self._metrics.bytes.inc("yes", amount=size)
            return
        self._done[digest] = (size, self._clock())
        self._done.move_to_end(digest)
        self._expire()

    def _expire(self) -> None:
        cutoff = self._clock() - UNASKED_AFTER
        while self._done:
            digest, (size, when) = next(iter(self._done.items()))
            if when > cutoff and len(self._done) <= TRACKED:
                break
            del self._done[digest]
            self._metrics.bytes.inc("no", amount=size)


class Prefetcher:
    """The prefetches of one upstream: a bounded queue worked by `concurrency` tasks."""

    def __init__(
        self,
        concurrency: int,
        tracker: AskTracker,
        metrics: PrefetchMetrics,
        *,
        downloading: Callable[[Digest], bool],
    ) -> None:
        self.concurrency = concurrency
        self._tracker = tracker
        self._metrics = metrics
        self._downloading = downloading
        self._queue: asyncio.Queue[tuple[Digest, int, Download]] = asyncio.Queue(QUEUED)
        self._queued: set[Digest] = set()
        self._workers: list[asyncio.Task[None]] = []

    def manifest(self, manifest: Manifest, download: Download) -> None:
        """Queue the blobs of an image manifest (config, then layers) that are neither
        queued nor being downloaded; an index names no blobs and queues nothing."""
        if manifest.is_index:
            return
        for blob in manifest.blobs:
            if _foreign(blob.media_type):
                continue
            if blob.digest in self._queued or self._downloading(blob.digest):
                self._metrics.blobs.inc("joined")
                continue
            try:
                self._queue.put_nowait((blob.digest, blob.size, download))
            except asyncio.QueueFull:
                self._metrics.blobs.inc("dropped")
                continue
            self._queued.add(blob.digest)
        self._start_workers()

    def _start_workers(self) -> None:
        self._workers = [task for task in self._workers if not task.done()]
        while len(self._workers) < min(self.concurrency, self._queue.qsize()):
            self._workers.append(asyncio.create_task(self._work()))

    async def _work(self) -> None:
        while not self._queue.empty():
            digest, size, download = self._queue.get_nowait()
            try:
                await self._one(digest, size, download)
            finally:
                self._queued.discard(digest)

    async def _one(self, digest: Digest, size: int, download: Download) -> None:
        if self._downloading(digest):  # a client's GET started it meanwhile
            self._metrics.blobs.inc("joined")
            return
        self._tracker.started(digest)
        downloaded = False
        try:
            downloaded = await download(digest)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._metrics.blobs.inc("failed")
            log.info("prefetch of blob %s failed: %s", digest, exc)
        else:
            self._metrics.blobs.inc("fetched" if downloaded else "cached")
        finally:
            self._tracker.finished(digest, size, downloaded)

    async def idle(self) -> None:
        """Wait until nothing is queued or running (tests; the shutdown cancels instead)."""
        while self._workers:
            await asyncio.gather(*self._workers, return_exceptions=True)
            self._workers = [task for task in self._workers if not task.done()]

    async def aclose(self) -> None:
        """Stop: queued blobs are forgotten, running prefetches cancelled (their fills
        belong to the fill manager, which ends them itself)."""
        while not self._queue.empty():
            self._queued.discard(self._queue.get_nowait()[0])
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers.clear()


def _foreign(media_type: str) -> bool:
    """Non-distributable ("foreign") layers are not served by the upstream registry."""
    return "nondistributable" in media_type or "foreign" in media_type
