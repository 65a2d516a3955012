"""The metadata store: small, hot, rebuildable key/value entries.

Tag freshness stamps, negative-cache entries and blob access times live here. Losing them
costs upstream requests, never content, which is why an outage of the shared store may
be answered from an embedded one.

Implementations: `MemoryMetadataStore` (one process), `DiskMetadataStore` (processes on
one host, on diskcache), `mirror.coordination.redis_metadata.RedisMetadataStore` (processes on
many hosts), and `FallbackMetadataStore` which answers from an embedded store while Redis
is unavailable.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from pathlib import Path
from typing import Protocol

import diskcache
from anyio import to_thread

from mirror.coordination.failover import BackendUnavailable, Failover
from mirror.metrics import METRICS, MetricsRegistry

# How many keys a scan examines between yields to the event loop.
_SCAN_SLICE = 256


def check_ttl(ttl: float | None) -> None:
    if ttl is not None and not ttl > 0:
        raise ValueError(f"ttl must be positive seconds or None, not {ttl!r}")


class MetadataStore(Protocol):
    """Keys are arbitrary strings (they may contain ``/``, ``:``, ``@``, ``*``); values
    are bytes. Entries with a ttl vanish once it has passed. Shared implementations
    raise `BackendUnavailable` when unreachable; embedded ones do not.
    """

    async def get(self, key: str) -> bytes | None:
        """The value of `key`, or None when it is missing or expired."""
        ...

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """The values of `keys`, in the same order, None for each missing one."""
        ...

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        """Store `value`, replacing any previous value and its ttl.

        `ttl` is in seconds (None: no expiry); a ttl that is not positive raises
        ValueError.
        """
        ...

    async def delete(self, key: str) -> None:
        """Remove `key`. Idempotent: deleting a missing key is not an error."""
        ...

    def scan(self, prefix: str) -> AsyncIterator[tuple[str, bytes]]:
        """Every live ``(key, value)`` whose key starts with `prefix`, in no set order.

        The disk and Redis stores hold one batch in memory at a time, however many
        entries match. Like Redis SCAN, a key may be yielded more than once, and entries
        changed during the scan may or may not be seen. Close the iterator (``aclose``)
        when not running it to the end.
        """
        ...

    async def aclose(self) -> None:
        """Release connections and files. The store is not used afterwards."""
        ...


class MemoryMetadataStore:
    """A dict with expiry, for one process (tests, the in-memory storage driver)."""

    def __init__(self) -> None:
        self._data: dict[str, tuple[bytes, float | None]] = {}
        self._writes_since_sweep = 0
        self._next_sweep = 1024

    def __len__(self) -> int:
        """Entries held, counting expired ones not yet swept."""
        return len(self._data)

    def _live(self, key: str, now: float) -> bytes | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        value, expires = entry
        if expires is not None and expires <= now:
            del self._data[key]
            return None
        return value

    def _sweep_now_and_then(self, now: float) -> None:
        # Expired entries that are never read again would pile up. Sweeping once as many
        # writes have happened as there were entries after the last sweep keeps the
        # cost O(1) per write.
        self._writes_since_sweep += 1
        if self._writes_since_sweep < self._next_sweep:
            return
        dead = [k for k, (_, exp) in self._data.items() if exp is not None and exp <= now]
        for key in dead:
            del self._data[key]
        self._writes_since_sweep = 0
        self._next_sweep = max(1024, len(self._data))

    async def get(self, key: str) -> bytes | None:
        return self._live(key, time.monotonic())

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        now = time.monotonic()
        return [self._live(key, now) for key in keys]

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        check_ttl(ttl)
        now = time.monotonic()
        self._data[key] = (bytes(value), None if ttl is None else now + ttl)
        self._sweep_now_and_then(now)

    async def delete(self, key: str) -> None:
        self._data.pop(key, None)

    async def scan(self, prefix: str) -> AsyncIterator[tuple[str, bytes]]:
        keys = [key for key in self._data if key.startswith(prefix)]
        for i, key in enumerate(keys):
            value = self._live(key, time.monotonic())
            if value is not None:
                yield key, value
            if i % _SCAN_SLICE == _SCAN_SLICE - 1:
                await asyncio.sleep(0)

    async def aclose(self) -> None:
        self._data.clear()


class DiskMetadataStore:
    """diskcache (SQLite in WAL mode) in `directory`; processes on one host may share it.

    Reads run on the event loop (a get takes ~13 us, less than the ~140 us of handing it
    to a worker thread). Writes go to a worker thread: a set takes ~100 us on a quiet
    disk, but a SQLite commit can wait milliseconds behind other disk traffic (seen while
    a 256 MiB download was being written), and the loop must not wait with it. A scan
    yields to the loop every few hundred keys.
    """

    def __init__(self, directory: str | Path, *, size_limit: int = 2**30) -> None:
        self._cache = diskcache.Cache(str(directory), size_limit=size_limit)

    async def get(self, key: str) -> bytes | None:
        value = self._cache.get(key)
        return value if isinstance(value, bytes) else None

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return [await self.get(key) for key in keys]

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        check_ttl(ttl)
        await to_thread.run_sync(functools.partial(self._cache.set, key, bytes(value), expire=ttl))

    async def delete(self, key: str) -> None:
        await to_thread.run_sync(self._cache.delete, key)

    async def scan(self, prefix: str) -> AsyncIterator[tuple[str, bytes]]:
        # diskcache has no range query in its public API, so this walks every key (in
        # batches of 100 rows, restarting after the last key seen, so memory is bounded).
        for i, key in enumerate(self._cache.iterkeys()):
            if isinstance(key, str) and key.startswith(prefix):
                value = self._cache.get(key)
                if isinstance(value, bytes):
                    yield key, value
            if i % _SCAN_SLICE == _SCAN_SLICE - 1:
                await asyncio.sleep(0)

    async def aclose(self) -> None:
        self._cache.close()


async def _close_iterator(iterator: AsyncIterator[tuple[str, bytes]]) -> None:
    if isinstance(iterator, AsyncGenerator):
        await iterator.aclose()


class FallbackMetadataStore:
    """`primary` (Redis) while it answers, `fallback` (embedded) while it does not.

    Never raises because the primary is unavailable. While it is down, reads and writes
    go to the fallback; what was written there is not copied back when it returns (the
    entries are rebuildable). Deletes always reach the fallback too, so that a later
    outage cannot bring back an entry deleted in between.
    """

    def __init__(
        self,
        primary: MetadataStore,
        fallback: MetadataStore,
        *,
        min_backoff: float = 1.0,
        max_backoff: float = 5.0,
        metrics: MetricsRegistry = METRICS,
    ) -> None:
        self.primary = primary
        self.fallback = fallback
        self.failover = Failover(
            "metadata", min_backoff=min_backoff, max_backoff=max_backoff, metrics=metrics
        )

    async def get(self, key: str) -> bytes | None:
        return await self.failover.call(
            lambda: self.primary.get(key), lambda: self.fallback.get(key)
        )

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return await self.failover.call(
            lambda: self.primary.get_many(keys), lambda: self.fallback.get_many(keys)
        )

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        check_ttl(ttl)
        await self.failover.call(
            lambda: self.primary.set(key, value, ttl),
            lambda: self.fallback.set(key, value, ttl),
        )

    async def delete(self, key: str) -> None:
        async def nothing() -> None:
            return None

        await self.failover.call(lambda: self.primary.delete(key), nothing)
        await self.fallback.delete(key)

    async def scan(self, prefix: str) -> AsyncIterator[tuple[str, bytes]]:
        if self.failover.should_try():
            entries = self.primary.scan(prefix)
            try:
                while True:
                    try:
                        entry = await anext(entries)
                    except StopAsyncIteration:
                        self.failover.succeeded()
                        return
                    except BackendUnavailable as exc:
                        # Entries already yielded may come again from the fallback;
                        # the scan contract allows repeats.
                        self.failover.failed(exc)
                        break
                    self.failover.succeeded()
                    yield entry
            finally:
                await _close_iterator(entries)
        self.failover.fell_back()
        entries = self.fallback.scan(prefix)
        try:
            async for entry in entries:
                yield entry
        finally:
            await _close_iterator(entries)

    async def aclose(self) -> None:
        try:
            await self.primary.aclose()
        except BackendUnavailable:
            pass
        await self.fallback.aclose()
