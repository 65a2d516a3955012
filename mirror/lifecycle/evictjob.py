"""The eviction job `mirror serve` runs: a pass after fills (the size cap) and every
`sweep_interval` (the ttl), one process or replica at a time.

Passes take the garbage collector's lease: both remove blobs under the same deletion
marks, which must have one owner at a time. A process whose fills added content runs
the next pass itself as soon as the lease is free, so the cached bytes are back under
the cap within about `min_gap` seconds of a fill completing (longer only while a
garbage collection holds the lease). The usage found by the last pass and its time are
kept in the metadata store, so every process reports the same `mirror_cache_size_bytes`
and the timed passes of all workers and replicas together come once per interval.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time

from mirror.coordination.leases import Coordinator
from mirror.coordination.metadata import MetadataStore
from mirror.lifecycle.collector import LEASE_KEY, LEASE_TTL
from mirror.lifecycle.eviction import EvictionReport, Evictor
from mirror.metrics import METRICS, MetricsRegistry

log = logging.getLogger("mirror.eviction")

USAGE_KEY = "evict:usage"
LAST_PASS_KEY = "evict:last"
SWEEP_INTERVAL = 300.0
MIN_GAP = 1.0


class EvictionJob:
    def __init__(
        self,
        evictor: Evictor,
        coordinator: Coordinator,
        metadata: MetadataStore,
        *,
        metrics: MetricsRegistry = METRICS,
        sweep_interval: float = SWEEP_INTERVAL,
        min_gap: float = MIN_GAP,
    ) -> None:
        self.evictor = evictor
        self._coordinator = coordinator
        self._metadata = metadata
        self._sweep_interval = sweep_interval
        self._min_gap = min_gap
        self._dirty = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._owner = f"eviction, pid {os.getpid()} on {socket.gethostname()}".encode()
        self._size = metrics.gauge(
            "mirror_cache_size_bytes", "Bytes of cached upstream content", mode="livemax"
        )
        self._cap = metrics.gauge(
            "mirror_cache_max_bytes", "cache.maxsize (0: no cap)", mode="livemax"
        )
        self._evictions = metrics.counter(
            "mirror_evictions_total", "Cached images evicted, by reason", ("reason",)
        )
        self._evicted = metrics.counter(
            "mirror_evicted_bytes_total", "Bytes of cached blobs removed by eviction"
        )
        self._cap.set(value=evictor.policy.maxsize)

    def filled(self) -> None:
        """A fill was stored: check the cap soon (a `ContentTracker.on_fill` listener)."""
        if self.evictor.policy.maxsize > 0:
            self._dirty.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="eviction")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def run_exclusively(self) -> EvictionReport | None:
        """One pass under the lease; None when another process holds it."""
        lease = await self._coordinator.acquire(LEASE_KEY, LEASE_TTL, self._owner)
        if lease is None:
            return None
        async with lease.keepalive():
            report = await self.evictor.run_once()
        for reason, count in report.evicted.items():
            self._evictions.inc(reason, amount=count)
        self._evicted.inc(amount=report.bytes_evicted)
        self._size.set(value=report.usage)
        try:
            await self._metadata.set(USAGE_KEY, str(report.usage).encode())
            await self._metadata.set(LAST_PASS_KEY, repr(time.time()).encode())
        except Exception as exc:
            log.warning("recording the cache usage failed: %s", exc)
        if report.removed:
            log.info(
                "evicted %d images (%d bytes): %s; cached content now %d bytes",
                len(report.removed),
                report.bytes_evicted,
                ", ".join(report.removed[:20]),
                report.usage,
            )
        return report

    async def _loop(self) -> None:
        next_sweep = time.monotonic()
        while True:
            timeout = max(next_sweep - time.monotonic(), 0.0)
            try:
                await asyncio.wait_for(self._dirty.wait(), timeout)
            except TimeoutError:
                pass
            dirty = self._dirty.is_set()
            self._dirty.clear()
            if not dirty:
                # Timed passes are shared: another worker or replica may have just made one.
                since = await self._since_last_pass()
                if since is not None and since < self._sweep_interval:
                    next_sweep = time.monotonic() + self._sweep_interval - since
                    await self._refresh_gauge()
                    continue
            try:
                report = await self.run_exclusively()
            except Exception:
                log.exception("eviction failed")
                next_sweep = time.monotonic() + min(self._sweep_interval, 60.0)
                continue
            if report is None:
                if dirty:
                    self._dirty.set()  # try again once the lease is free
                await self._refresh_gauge()
            else:
                next_sweep = time.monotonic() + self._sweep_interval
            await asyncio.sleep(self._min_gap)

    async def _since_last_pass(self) -> float | None:
        try:
            raw = await self._metadata.get(LAST_PASS_KEY)
            return None if raw is None else max(time.time() - float(raw), 0.0)
        except Exception:
            return None

    async def _refresh_gauge(self) -> None:
        try:
            raw = await self._metadata.get(USAGE_KEY)
            if raw is not None:
                self._size.set(value=int(raw))
        except Exception:
            pass
