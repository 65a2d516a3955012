"""What the store tells garbage collection and eviction about the content it uses.

`ContentTracker` is the store's side of the online-collection protocol (ARCHITECTURE.md,
"Garbage collection"): the store calls

- `used(digests)` wherever content is read or checked (blob HEAD/GET, manifest GET, a
  link, an upload or fill commit): a batched touch of the access log, a dict assignment
  on the hit path, never failing the request;
- `claim(digests)` wherever it is about to make content depend on digests that may be
  old (a manifest PUT on its blobs and children, a mount, an upload or manifest write
  that finds its content already stored): a durable touch, then the deletion marks.
  A digest still marked is being deleted: `claim` waits (bounded) for the collector to
  finish with it and says which digests it gave up on, so that the caller re-checks
  existence, or treats them as missing;
- `reading(digest)` around the sending of a blob: while a client downloads, the digest
  is touched again every `refresh` seconds, so that no process removes content a
  client is reading, however long the download takes;
- `filled()` when a download from an upstream was stored: eviction's cue to check the
  size cap (`on_fill` listeners).

Without an access log (`ContentTracker()`, the offline command, tests) every call is
free and `claim` finds nothing marked.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager

from mirror.coordination.accesslog import AccessLog, DeletionMarks
from mirror.digests import Digest

log = logging.getLogger("mirror.store")

MARK_WAIT = 10.0  # seconds a claim waits for a collector to finish deleting a digest
MARK_POLL = 0.05
READ_REFRESH = 2.0


class ContentTracker:
    def __init__(
        self,
        access_log: AccessLog | None = None,
        marks: DeletionMarks | None = None,
        *,
        mark_wait: float = MARK_WAIT,
        refresh: float = READ_REFRESH,
    ) -> None:
        self.access_log = access_log
        self.marks = marks
        self._mark_wait = mark_wait
        self._refresh = refresh
        self._reading: dict[Digest, int] = {}
        self._refresher: asyncio.Task[None] | None = None
        self.on_fill: list[Callable[[], None]] = []

    @property
    def active(self) -> bool:
        return self.access_log is not None

    def used(self, digests: Iterable[Digest]) -> None:
        """Record a use now (batched; never raises, never waits)."""
        if self.access_log is not None:
            self.access_log.record(digests)

    async def claim(self, digests: Sequence[Digest]) -> set[Digest]:
        """Touch `digests` durably, then wait while any is marked for deletion; return
        those still marked after the wait (treat them as missing). Raises what the
        metadata store raises."""
        if self.access_log is None or not digests:
            return set()
        await self.access_log.touch(digests, durable=True)
        if self.marks is None:
            return set()
        waiting = list(digests)
        deadline = time.monotonic() + self._mark_wait
        while True:
            marked = await self.marks.marked(waiting)
            waiting = [d for d, m in zip(waiting, marked, strict=True) if m]
            if not waiting or time.monotonic() >= deadline:
                return set(waiting)
            await asyncio.sleep(MARK_POLL)

    def filled(self) -> None:
        """Cached content was added (a fill committed); never raises."""
        for listener in self.on_fill:
            try:
                listener()
            except Exception:
                log.exception("a fill listener failed")

    @contextmanager
    def reading(self, digest: Digest) -> Iterator[None]:
        """Keep `digest` touched while the block runs (see `begin_read`)."""
        self.begin_read(digest)
        try:
            yield
        finally:
            self.end_read(digest)

    def begin_read(self, digest: Digest) -> None:
        """A blob starts being sent; `end_read` when it is done (the hit path: no
        context manager, a few dict operations)."""
        if self.access_log is None:
            return
        reading = self._reading
        reading[digest] = reading.get(digest, 0) + 1
        self.access_log.record((digest,))
        if self._refresher is None:
            self._refresher = asyncio.get_running_loop().create_task(self._refresh_reads())

    def end_read(self, digest: Digest) -> None:
        reading = self._reading
        count = reading.get(digest, 0) - 1
        if count > 0:
            reading[digest] = count
        else:
            reading.pop(digest, None)

    def being_read(self) -> set[Digest]:
        """Digests this process is sending right now."""
        return set(self._reading)

    async def _refresh_reads(self) -> None:
        try:
            while self._reading:
                await asyncio.sleep(self._refresh)
                self.used(list(self._reading))
        finally:
            self._refresher = None

    async def aclose(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            await asyncio.gather(self._refresher, return_exceptions=True)
            self._refresher = None
