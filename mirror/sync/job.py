"""Running the sync passes that are due: in the background of `mirror serve`, or once.

Every process of every replica runs the loop; a pass takes the `sync` lease first (the
coordinator the fills use: lock files between the processes of a host, Redis between
hosts), so one of them syncs at a time and the others skip. When each target is due
again is kept in the shared metadata store, so the replicas keep one schedule: a target
runs once per interval, whoever holds the lease then.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from mirror.coordination.leases import Coordinator, Lease
from mirror.sync.marks import SyncMarks
from mirror.sync.syncer import Syncer, SyncReport, SyncTarget

log = logging.getLogger("mirror.sync")

LEASE_KEY = "sync"
LEASE_TTL = 30.0
START_DELAY = 2.0  # after startup: let the server answer first
MIN_TICK, MAX_TICK = 1.0, 60.0
RETRY_FLOOR = 60.0  # a target that failed is tried again after this, not before


class SyncBusy(Exception):
    """Another process holds the sync lease."""


class SyncJob:
    def __init__(
        self,
        syncer: Syncer,
        targets: Sequence[SyncTarget],
        coordinator: Coordinator,
        marks: SyncMarks,
    ) -> None:
        self.syncer = syncer
        self.targets = tuple(targets)
        self.coordinator = coordinator
        self.marks = marks
        shortest = min((t.interval for t in self.targets), default=MAX_TICK)
        self.tick = min(max(shortest / 4, MIN_TICK), MAX_TICK)
        self._task: asyncio.Task[None] | None = None

    async def run_once(self, *, force: bool = False, wait: float = 0.0) -> list[SyncReport]:
        """Sync the targets that are due (every one with `force`) under the lease.

        Waits up to `wait` seconds for another holder to finish, then raises SyncBusy.
        """
        lease = await self._acquire(wait)
        reports: list[SyncReport] = []
        async with lease.keepalive():
            for target in self.targets:
                if lease.lost:
                    break
                if not force and not await self._due(target):
                    continue
                report = await self.syncer.sync(target, stop=lambda: lease.lost)
                reports.append(report)
                await self._schedule(target, report)
        return reports

    async def _acquire(self, wait: float) -> Lease:
        deadline = time.monotonic() + wait
        while True:
            lease = await self.coordinator.acquire(LEASE_KEY, LEASE_TTL, b"sync")
            if lease is not None:
                return lease
            left = deadline - time.monotonic()
            if left <= 0:
                raise SyncBusy("another process is syncing")
            await self.coordinator.wait_released(LEASE_KEY, min(left, LEASE_TTL))

    async def _due(self, target: SyncTarget) -> bool:
        try:
            when = await self.marks.next_run(target.key)
        except Exception:
            log.warning("reading the sync schedule failed", exc_info=True)
            return False
        return when is None or when <= time.time()

    async def _schedule(self, target: SyncTarget, report: SyncReport) -> None:
        delay = target.interval
        if report.retry_after is not None:
            delay = max(report.retry_after, RETRY_FLOOR)
        elif not report.ok:
            delay = min(target.interval, max(RETRY_FLOOR, target.interval / 4))
        try:
            await self.marks.schedule(target.key, time.time() + delay, delay + target.interval)
        except Exception:
            log.warning("writing the sync schedule failed", exc_info=True)

    # -- in the background of `mirror serve` ----------------------------------------------

    async def start(self) -> None:
        if self.targets:
            self._task = asyncio.create_task(self._loop(), name="sync")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _loop(self) -> None:
        await asyncio.sleep(START_DELAY)
        while True:
            try:
                await self.run_once()
            except SyncBusy:
                pass
            except Exception:
                log.exception("sync pass failed")
            await asyncio.sleep(self.tick)
