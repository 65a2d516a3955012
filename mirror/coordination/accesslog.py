"""When content was last used, and which content a garbage collection is deleting.

Two small interfaces that the store and the garbage collector share through the
coordination metadata store, so that a collection can run while `mirror` serves:

- `AccessLog`: the store records a *touch* of a digest whenever content is used or about
  to be referenced (upload commit, mount, layer link, blob HEAD/GET, manifest PUT
  verification, manifest GET). The collector keeps everything touched within its grace
  delay. Cache eviction reads the same times later.
- `DeletionMarks`: the collector marks a digest before deleting it and unmarks it after;
  a store operation that has just made a manifest depend on a digest checks that the
  digest is not marked (the protocol is in ARCHITECTURE.md, "Garbage collection").

Touches are batched: `touch` only updates a dict in this process, and a background task
writes the batch to the metadata store every `flush_interval` seconds, so a touch on the
hit path costs a dict assignment. `touch(..., durable=True)` writes at once and returns
after the write, for the commit paths whose touch the collector must see before its
final re-check.

Times are wall-clock seconds (`time.time()`), comparable between processes and hosts as
far as their clocks agree; the grace delay must be far larger than clock skew plus
`flush_interval`. When several processes touch one digest, the last flush wins, which
is at most `flush_interval` older than the newest touch.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from mirror.coordination.metadata import MetadataStore
from mirror.digests import Digest

log = logging.getLogger("mirror.coordination")

ACCESS_PREFIX = "access/"
DELETING_PREFIX = "gc-deleting/"
DEFAULT_FLUSH_INTERVAL = 1.0
DEFAULT_RETENTION = 30 * 24 * 3600.0
_TIME = struct.Struct(">d")


class AccessLog(Protocol):
    def record(self, digests: Iterable[Digest]) -> None:
        """A batched touch, callable without awaiting (the hit path); never raises."""
        ...

    async def touch(self, digests: Iterable[Digest], *, durable: bool = False) -> None:
        """Record that `digests` are used now.

        Without `durable` the touch is batched: visible to this process at once and to
        others within the flush interval; it never raises (a failed flush is logged and
        retried with the next batch). With `durable` it returns after the shared store
        has it, and raises what the store raises (`BackendUnavailable`).
        """
        ...

    async def last_used(self, digests: Sequence[Digest]) -> list[float | None]:
        """The newest touch time of each digest (pending ones of this process included),
        in order; None for a digest never touched or forgotten after the retention."""
        ...

    async def flush(self) -> None:
        """Write the pending batch now (idempotent; raises what the store raises)."""
        ...

    async def aclose(self) -> None:
        """Flush what is pending (best effort) and stop the background writer."""
        ...


class DeletionMarks(Protocol):
    async def mark(self, digest: Digest, ttl: float) -> None:
        """Announce that `digest` is about to be deleted; the mark lapses after `ttl`
        seconds so that a collector that died leaves nothing behind. Durable on return."""
        ...

    async def unmark(self, digest: Digest) -> None:
        """Withdraw the mark (idempotent)."""
        ...

    async def marked(self, digests: Sequence[Digest]) -> list[bool]:
        """Whether each digest is marked for deletion right now, in order."""
        ...


def _pack(moment: float) -> bytes:
    return _TIME.pack(moment)


def _unpack(value: bytes | None) -> float | None:
    if value is None or len(value) != _TIME.size:
        return None
    moment: float = _TIME.unpack(value)[0]
    return moment


class MetadataAccessLog:
    """`AccessLog` and `DeletionMarks` on a `MetadataStore` (memory, disk or Redis);
    on a `MemoryMetadataStore` it is the in-process implementation tests use.

    Entries live under `prefix` + ``access/<digest>`` (value: an 8-byte time) with a
    ttl of `retention`, and ``gc-deleting/<digest>``. The background writer starts with
    the first batched touch made inside a running event loop.
    """

    def __init__(
        self,
        metadata: MetadataStore,
        *,
        prefix: str = "",
        flush_interval: float = DEFAULT_FLUSH_INTERVAL,
        retention: float = DEFAULT_RETENTION,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not flush_interval > 0 or not retention > 0:
            raise ValueError("flush_interval and retention must be positive seconds")
        self._metadata = metadata
        self._prefix = prefix
        self._flush_interval = flush_interval
        self._retention = retention
        self._clock = clock
        self._pending: dict[Digest, float] = {}  # formatted as keys only when written
        self._writer: asyncio.Task[None] | None = None
        self._closed = False

    def _access_key(self, digest: Digest) -> str:
        return f"{self._prefix}{ACCESS_PREFIX}{digest}"

    def _deleting_key(self, digest: Digest) -> str:
        return f"{self._prefix}{DELETING_PREFIX}{digest}"

    async def touch(self, digests: Iterable[Digest], *, durable: bool = False) -> None:
        if not durable:
            self.record(digests)
            return
        now = self._clock()
        keys = [self._access_key(digest) for digest in digests]
        await asyncio.gather(
            *(self._metadata.set(key, _pack(now), self._retention) for key in keys)
        )

    def record(self, digests: Iterable[Digest]) -> None:
        now = self._clock()
        pending = self._pending
        for digest in digests:
            pending[digest] = now
        if self._writer is None and not self._closed:
            try:
                self._writer = asyncio.get_running_loop().create_task(self._write_periodically())
            except RuntimeError:  # no running loop: flushed by the next touch or aclose
                pass

    async def last_used(self, digests: Sequence[Digest]) -> list[float | None]:
        keys = [self._access_key(digest) for digest in digests]
        stored = await self._metadata.get_many(keys)
        found: list[float | None] = []
        for digest, value in zip(digests, stored, strict=True):
            moment = _unpack(value)
            pending = self._pending.get(digest)
            if pending is not None and (moment is None or pending > moment):
                moment = pending
            found.append(moment)
        return found

    async def flush(self) -> None:
        # The batch stays pending until written: `last_used` must see it meanwhile.
        batch = dict(self._pending)
        await asyncio.gather(
            *(
                self._metadata.set(self._access_key(digest), _pack(moment), self._retention)
                for digest, moment in batch.items()
            )
        )
        pending = self._pending
        for digest, moment in batch.items():
            if pending.get(digest) == moment:  # not touched again since
                del pending[digest]

    async def _write_periodically(self) -> None:
        while True:
            await asyncio.sleep(self._flush_interval)
            if not self._pending:
                continue
            try:
                await self.flush()
            except Exception as exc:
                log.warning("access log: writing %d touches failed: %s", len(self._pending), exc)

    async def aclose(self) -> None:
        self._closed = True
        if self._writer is not None:
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)
            self._writer = None
        if self._pending:
            try:
                await self.flush()
            except Exception as exc:
                log.warning("access log: %d touches lost at close: %s", len(self._pending), exc)

    async def mark(self, digest: Digest, ttl: float) -> None:
        await self._metadata.set(self._deleting_key(digest), b"1", ttl)

    async def unmark(self, digest: Digest) -> None:
        await self._metadata.delete(self._deleting_key(digest))

    async def marked(self, digests: Sequence[Digest]) -> list[bool]:
        values = await self._metadata.get_many([self._deleting_key(d) for d in digests])
        return [value is not None for value in values]
