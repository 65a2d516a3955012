"""Garbage collection while serving: the job `storage.maintenance.gc` starts.

Each run is `mirror garbage-collect`'s collection with the store's access log and
deletion marks and a grace delay (see `guard`), under the lease every collector takes,
so that one process or replica collects at a time. A run is skipped, not attempted,
while the metadata store is degraded (Redis down: the access log would be only this
host's), and when another collector holds the lease for 5 minutes (eviction passes
take the same lease, briefly).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable

from mirror.coordination.accesslog import MetadataAccessLog
from mirror.coordination.leases import Coordinator
from mirror.coordination.metadata import MetadataStore
from mirror.lifecycle.collector import (
    GarbageCollector,
    GCBusy,
    GCError,
    GCOptions,
    collect_exclusively,
)
from mirror.lifecycle.report import GCReport
from mirror.metrics import METRICS, MetricsRegistry
from mirror.store.driver import StorageDriver

log = logging.getLogger("mirror.gc")

LAST_RUN_KEY = "gc:last"
BUSY_TRIES = 30
BUSY_WAIT = 10.0  # seconds between tries while another holds the lease


class OnlineCollector:
    def __init__(
        self,
        driver: StorageDriver,
        coordinator: Coordinator,
        access_log: MetadataAccessLog,
        *,
        delay: float,
        delete_untagged: bool = False,
        degraded: Callable[[], bool] = lambda: False,
        schedule: MetadataStore | None = None,
        interval: float = 0.0,
        metrics: MetricsRegistry = METRICS,
        clock: Callable[[], float] = time.time,
        busy_wait: float = BUSY_WAIT,
    ) -> None:
        self._driver = driver
        self._busy_wait = busy_wait
        self._coordinator = coordinator
        self._log = access_log
        self._options = GCOptions(delay=delay, delete_untagged=delete_untagged)
        self._degraded = degraded
        self._schedule = schedule
        self._interval = interval
        self._clock = clock
        self._owner = f"mirror serve, pid {os.getpid()} on {socket.gethostname()}"
        self._runs = metrics.counter(
            "mirror_gc_runs_total", "Online garbage collections, by outcome", ("outcome",)
        )
        self._freed = metrics.counter(
            "mirror_gc_freed_bytes_total", "Bytes of blobs removed by garbage collection"
        )
        self._removed = metrics.counter(
            "mirror_gc_removed_total",
            "Blobs and manifests removed by garbage collection",
            ("kind",),
        )

    async def run_once(self) -> GCReport | None:
        """One collection; None when it was skipped. Raises nothing but cancellation."""
        if await self._ran_recently():
            return None  # by another worker or replica, on the shared schedule
        if self._degraded():
            log.warning("garbage collection skipped: the shared metadata store is unavailable")
            self._runs.inc("skipped")
            return None
        try:
            # What this process touched reaches the shared store before the collection
            # reads it (other processes flush on their own within their interval).
            await self._log.flush()
        except Exception as exc:
            log.warning("garbage collection skipped: the access log is unavailable: %s", exc)
            self._runs.inc("skipped")
            return None
        collector = GarbageCollector(
            self._driver,
            self._options,
            access_log=self._log,
            marks=self._log,
            warn=log.warning,
            clock=self._clock,
        )
        started = time.monotonic()
        try:
            report = await self._collect(collector)
        except GCError as exc:
            log.error("garbage collection failed: %s", exc)
            self._account(collector.report)
            self._runs.inc("failed")
            return None
        if report is None:
            self._runs.inc("busy")
            return None
        self._account(report)
        self._runs.inc("completed" if not report.errors else "errors")
        if self._schedule is not None:
            try:
                await self._schedule.set(LAST_RUN_KEY, repr(time.time()).encode())
            except Exception as exc:
                log.warning("recording the garbage collection's time failed: %s", exc)
        log.info("garbage collection in %.1fs: %s", time.monotonic() - started, report.summary())
        return report

    async def _ran_recently(self) -> bool:
        """Whether a collection completed within 90% of the interval (every worker of
        every replica runs this job; together they collect once per interval)."""
        if self._schedule is None or self._interval <= 0:
            return False
        try:
            raw = await self._schedule.get(LAST_RUN_KEY)
            last = float(raw) if raw is not None else None
        except Exception:
            return False
        return last is not None and time.time() - last < 0.9 * self._interval

    async def _collect(self, collector: GarbageCollector) -> GCReport | None:
        """Collect under the lease, waiting while others hold it briefly; None when it
        stayed taken (another collection)."""
        for attempt in range(BUSY_TRIES):
            try:
                return await collect_exclusively(self._coordinator, collector, owner=self._owner)
            except GCBusy as exc:
                # Eviction passes hold the lease for moments; another collection longer.
                if attempt == BUSY_TRIES - 1:
                    log.info("garbage collection skipped: %s", exc)
                    return None
                await asyncio.sleep(self._busy_wait)
                if await self._ran_recently():
                    return None  # that was another worker's collection
        return None

    def _account(self, report: GCReport) -> None:
        self._freed.inc(amount=report.bytes_freed)
        self._removed.inc("blob", amount=report.blobs_removed)
        self._removed.inc("manifest", amount=report.manifests_removed)
