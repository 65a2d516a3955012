"""Single-flight blob fills: one upstream download per digest, streamed to every reader.

A fill downloads a blob into a verified ingest (`BlobIngest`) in a task of its own, so it
goes on when the client that started it goes away. Readers - the first client and any
that come later - take the newest bytes from memory and older ones from the ingest's
partial blob, following the growing tail (`mirror.cache.fills.follow`); once committed,
the rest comes from the stored blob. Because content is addressed by digest, any source
at the same offset has the same bytes.

The last byte a reader asked for is held back until the fill is verified (digest and
size), so a corrupt or truncated download never completes a response: the reader raises
instead, and the server drops the connection.

Across processes, a lease (`Coordinator`) elects the one downloader; the others follow
the holder's partial blob, whose locator and size the holder announces in the shared
metadata store (`mirror.cache.fills.announcements`). When the holder dies, its lease is
free as soon as that can be seen (at once on the same host, else at its expiry); another
process takes over, its readers carry on from where they are, and the dead holder's
partial is removed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Protocol

from mirror.cache.fills.announcements import Announcement, Announcements
from mirror.cache.fills.fill import Fill, FillState
from mirror.cache.fills.follow import follow
from mirror.cache.fills.pump import pump
from mirror.coordination.leases import Coordinator
from mirror.coordination.metadata import MetadataStore
from mirror.digests import Digest
from mirror.metrics import METRICS, MetricsRegistry
from mirror.store.blobs import BlobIngest, BlobStore
from mirror.store.ingest.staging import PartialGone, PartialReader, PartialState
from mirror.store.view import BlobContent

log = logging.getLogger("mirror.cache")


class BlobSource(Protocol):
    """An open upstream download."""

    size: int | None

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


SourceOpener = Callable[[], Awaitable[BlobSource]]
Callback = Callable[[], Awaitable[None]]


class FillMetrics:
    def __init__(self, metrics: MetricsRegistry) -> None:
        self.started = metrics.counter("mirror_fills_total", "Blob downloads started", ("result",))
        self.coalesced = metrics.counter(
            "mirror_coalesced_waiters_total", "Requests that joined a download already running"
        )
        self.bytes_upstream = metrics.counter(
            "mirror_upstream_bytes_total", "Blob bytes received from upstreams"
        )
        self.followed = metrics.counter(
            "mirror_fills_followed_total", "Downloads followed from another process"
        )
        self.active = metrics.gauge("mirror_fills_active", "Blob downloads running in this process")


class FillManager:
    def __init__(
        self,
        blobs: BlobStore,
        coordinator: Coordinator,
        metadata: MetadataStore,
        *,
        lease_ttl: float = 30.0,
        poll: float = 0.05,
        stall_timeout: float = 60.0,
        metrics: MetricsRegistry = METRICS,
    ) -> None:
        self.blobs = blobs
        self.stall_timeout = stall_timeout
        self.coordinator = coordinator
        self.lease_ttl = lease_ttl
        self.poll = poll
        self.metrics = FillMetrics(metrics)
        self.announcements = Announcements(metadata, lease_ttl * 4)
        self._fills: dict[Digest, Fill] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def fetch(
        self, digest: Digest, opener: SourceOpener, *, on_stored: Callback | None = None
    ) -> BlobContent:
        """The blob, downloading it once however many ask; raise what opening raised.

        `on_stored` runs once the blob is committed (at once if it already is).
        """
        fill = self._join(digest, opener, on_stored)
        # Answer once the size and the first byte are here (or the download is over): a
        # failure before them is still an error answer (UNAVAILABLE), not a 200 whose body
        # never comes. A download of unknown size is answered once it is stored.
        while fill.state is FillState.PENDING or (
            fill.state is FillState.STREAMING
            and (fill.size is None or (fill.available == 0 and fill.size > 0))
        ):
            await fill.changed()
        if fill.size is None:  # not streamable: wait for the outcome
            while fill.state is FillState.VERIFIED:
                await fill.changed()
        if fill.state is FillState.FAILED:
            assert fill.error is not None
            raise fill.error
        if fill.state is FillState.STORED:
            if on_stored is not None and fill.claim(on_stored):
                await on_stored()
            info = await self.blobs.stat(digest)
            return BlobContent(
                digest,
                info.size,
                open=lambda start, _end: self.blobs.open(digest, start),
                local_path=self.blobs.local_path(digest),
            )
        assert fill.size is not None
        return BlobContent(
            digest,
            fill.size,
            open=lambda start, end: self._read(fill, start, end),
            downloading=True,
        )

    async def complete(
        self, digest: Digest, opener: SourceOpener, *, on_stored: Callback | None = None
    ) -> None:
        """Download the blob (or join its download) and return once it is stored and
        `on_stored` has run; raise what the download raised. Nothing is read: for
        content wanted in the cache rather than by a client (sync)."""
        ran = asyncio.Event()

        async def stored() -> None:
            try:
                if on_stored is not None:
                    await on_stored()
            finally:
                ran.set()

        fill = self._join(digest, opener, stored)
        while fill.state not in (FillState.STORED, FillState.FAILED):
            await fill.changed()
        if fill.state is FillState.FAILED:
            assert fill.error is not None
            raise fill.error
        if fill.claim(stored):
            await stored()
        # Handed out: the download's task runs it right after the commit.
        await ran.wait()

    def _join(self, digest: Digest, opener: SourceOpener, on_stored: Callback | None) -> Fill:
        fill = self._fills.get(digest)
        if fill is None:
            fill = self._fills[digest] = Fill(digest)
            task = asyncio.create_task(self._run(fill, opener))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            self.metrics.coalesced.inc()
        if on_stored is not None:
            fill.on_stored(on_stored)
        return fill

    def running(self, digest: Digest) -> bool:
        """Whether this process has a download of `digest` under way."""
        return digest in self._fills

    def size_of(self, digest: Digest) -> int | None:
        """The size of a blob being downloaded in this process, when known."""
        fill = self._fills.get(digest)
        downloading = (FillState.STREAMING, FillState.VERIFIED)
        return fill.size if fill is not None and fill.state in downloading else None

    async def drain(self) -> None:
        """Wait until the downloads running now have finished (committed or failed)."""
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def aclose(self, grace: float = 0.0) -> None:
        """Stop every download: those still running after `grace` seconds (the rest of
        a SIGTERM drain) are cancelled, and commit nothing."""
        if grace > 0 and self._tasks:
            await asyncio.wait(list(self._tasks), timeout=grace)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _run(self, fill: Fill, opener: SourceOpener) -> None:
        key = Announcements.key(fill.digest)
        try:
            while True:
                lease = await self.coordinator.acquire(key, self.lease_ttl)
                if lease is not None:
                    break
                self.metrics.followed.inc()
                fill.following()
                await self._follow(fill, key)
                if await self.blobs.exists(fill.digest):
                    break
                # An announcement left behind is a holder that died.
                left = await self.announcements.get(fill.digest)
                fill.take_over(abandoned=left is not None and left.locator == fill.locator)
            if lease is None:
                result = "followed"
            else:
                async with lease.keepalive():
                    result = await self._download(fill, opener)
            await self._stored(fill)
            self.metrics.started.inc(result)
        except BaseException as exc:
            self.metrics.started.inc("failed")
            fill.fail(exc)
            if not isinstance(exc, Exception):
                raise
            log.warning("download of %s failed: %s", fill.digest, exc)
        finally:
            if self._fills.get(fill.digest) is fill:
                del self._fills[fill.digest]

    async def _stored(self, fill: Fill) -> None:
        for callback in fill.stored():
            try:
                await callback()
            except Exception:
                log.exception("after storing blob %s", fill.digest)

    async def _download(self, fill: Fill, opener: SourceOpener) -> str:
        if await self.blobs.exists(fill.digest):
            return "present"
        # The temp file is made while the upstream answers: both are on the way to the
        # first byte.
        opening = asyncio.ensure_future(self.blobs.ingest(fill.digest))
        ingest: BlobIngest | None = None
        announced: asyncio.Task[None] | None = None
        self.metrics.active.inc()
        try:
            try:
                source = await opener()
            finally:
                ingest = await opening
            try:
                if source.size is not None:
                    # Before any byte is sent: a download that would run out of space
                    # fails now, with a clear error, and leaves the room to another.
                    await ingest.reserve(source.size)
                fill.streaming(source.size, ingest.locator)
                announced = asyncio.create_task(
                    self._announce(fill.digest, ingest.locator, source.size)
                )
                await pump(
                    fill,
                    source,
                    ingest,
                    stall_timeout=self.stall_timeout,
                    received=lambda n: self.metrics.bytes_upstream.inc(amount=n),
                )
                await ingest.flush()
                await ingest.verify(source.size)
                # Readers may finish now: the bytes are right; publishing (fsync,
                # rename) need not hold them up.
                fill.verified(ingest.size)
                await ingest.commit(source.size)
            finally:
                await source.aclose()
            return "downloaded"
        finally:
            self.metrics.active.dec()
            if ingest is not None:
                await ingest.cancel()
            if announced is not None:
                await asyncio.gather(announced, return_exceptions=True)
                await self.announcements.withdraw(fill.digest)

    async def _announce(self, digest: Digest, locator: str, size: int | None) -> None:
        """Tell other processes where this download's partial is (when they can stream
        it: its size is known), and remove the partial of a holder that died before."""
        previous = await self.announcements.get(digest)
        if size is not None:
            await self.announcements.publish(digest, Announcement(locator, size))
        if previous is not None and previous.locator != locator:
            try:
                if await self.blobs.discard_partial(digest, previous.locator):
                    log.info("removed the partial of %s left by a download that died", digest)
            except Exception:
                log.warning(
                    "removing a dead download's partial of %s failed", digest, exc_info=True
                )

    async def _follow(self, fill: Fill, key: str) -> None:
        """Track another process's download until it is committed, or its lease is
        released or expires."""
        partial: PartialReader | None = None
        try:
            while True:
                if fill.state is FillState.PENDING:
                    partial = await self._announced(fill)
                if partial is not None:
                    try:
                        progress = await partial.progress()
                    except PartialGone:  # out of reach: wait for the commit
                        await partial.aclose()
                        partial = None
                        continue
                    if progress.available > fill.flushed:
                        fill.on_disk(progress.available)
                        fill.notify()
                    if progress.state is PartialState.COMMITTED:
                        return
                if await self.coordinator.wait_released(key, self.poll):
                    return
        finally:
            if partial is not None:
                await partial.aclose()

    async def _announced(self, fill: Fill) -> PartialReader | None:
        """Start streaming from the holder's partial once it is announced."""
        announced = await self.announcements.get(fill.digest)
        if announced is None:
            return None
        fill.streaming(announced.size, announced.locator)
        try:
            return await self.blobs.open_partial(fill.digest, announced.locator)
        except PartialGone:  # committed or failed already: the lease will say
            return None

    async def _read(self, fill: Fill, start: int, end: int) -> AsyncGenerator[bytes, None]:
        """Stream bytes `start`..`end` of `fill`'s blob, following the download."""
        return follow(fill, start, end, self.blobs, self.poll)
