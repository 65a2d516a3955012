"""Mark-and-sweep garbage collection of a store, through its storage driver.

`GarbageCollector.run` marks (see `mark`), then, unless the mark phase failed, sweeps
untagged manifests and unmarked blobs (see `sweep`) under the checks of `guard`.
`collect_exclusively` runs it under a lease so that one process collects at a time.

The offline command (`mirror garbage-collect`) runs it with no access log and, by
default, no grace delay: registry:2's command and meaning, for a registry that is
stopped or read-only. The online job (to come) runs it with the store's access log,
deletion marks and a grace delay, next to the serving registry.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from mirror.coordination.accesslog import AccessLog, DeletionMarks
from mirror.coordination.leases import Coordinator
from mirror.lifecycle.guard import DEFAULT_MARK_TTL, CollectionStopped, SweepGuard
from mirror.lifecycle.layout import Layout
from mirror.lifecycle.mark import Marker
from mirror.lifecycle.report import Emit, Events, GCReport
from mirror.lifecycle.sweep import Sweeper
from mirror.store.driver import StorageDriver, StorageDriverError

LEASE_KEY = "mirror:garbage-collect"
LEASE_TTL = 60.0
DEFAULT_CONCURRENCY = 32


class GCError(Exception):
    """The collection could not run or was stopped; nothing more was deleted after it."""


class GCBusy(GCError):
    """Another process holds the garbage-collection lease."""


@dataclass(frozen=True, slots=True)
class GCOptions:
    dry_run: bool = False
    delete_untagged: bool = False
    delay: float = 0.0  # grace delay in seconds: newer content is kept
    concurrency: int = DEFAULT_CONCURRENCY  # driver calls in flight at most
    mark_ttl: float = DEFAULT_MARK_TTL

    def __post_init__(self) -> None:
        if self.delay < 0:
            raise ValueError(f"the grace delay must not be negative, not {self.delay!r}")
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {self.concurrency!r}")


class GarbageCollector:
    """One collection of the store on `driver`; `run` may be called once per instance."""

    def __init__(
        self,
        driver: StorageDriver,
        options: GCOptions | None = None,
        *,
        access_log: AccessLog | None = None,
        marks: DeletionMarks | None = None,
        emit: Emit | None = None,
        warn: Emit | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.options = options or GCOptions()
        self._driver = driver
        self._access_log = access_log
        self._marks = marks
        self._clock = clock
        self.report = GCReport(dry_run=self.options.dry_run)
        self._events = Events(self.report, emit, warn)

    async def run(self, stop: Callable[[], bool] | None = None) -> GCReport:
        """Mark and sweep; return the report (errors during the sweep are counted in it).

        Raises GCError when the mark phase fails (nothing is deleted then) or when
        `stop()` turns true during the sweep (what was deleted stays deleted).
        """
        options = self.options
        # Everything changed after this moment, or within `delay` before it, is kept.
        cutoff = self._clock() - options.delay
        layout = Layout(self._driver, options.concurrency)
        try:
            marks = await Marker(
                layout, self._events, delete_untagged=options.delete_untagged
            ).run()
        except StorageDriverError as exc:
            self._events.error(f"marking failed, nothing was deleted: {exc}")
            raise GCError(f"marking failed, nothing was deleted: {exc}") from exc
        guard = SweepGuard(
            cutoff,
            access_log=self._access_log,
            marks=None if options.dry_run else self._marks,
            mark_ttl=options.mark_ttl,
            stop=stop,
        )
        sweeper = Sweeper(layout, self._events, guard, marks, dry_run=options.dry_run)
        try:
            await sweeper.manifests()
            await sweeper.blobs()
        except CollectionStopped as exc:
            self._events.error(str(exc))
            raise GCError(f"stopped: {exc}") from exc
        except StorageDriverError as exc:
            self._events.error(f"sweeping failed: {exc}")
            raise GCError(f"sweeping failed: {exc}") from exc
        self.report.blobs_marked = len(marks.marked)
        self._events.line("")
        self._events.line(self.report.eligibility_line())
        return self.report


async def collect_exclusively(
    coordinator: Coordinator,
    collector: GarbageCollector,
    *,
    key: str = LEASE_KEY,
    ttl: float = LEASE_TTL,
    owner: str = "",
) -> GCReport:
    """Run `collector` while holding the lease `key`, renewed in the background.

    Raises GCBusy at once when another process holds it; stops sweeping (GCError) when
    the lease is lost to another holder.
    """
    lease = await coordinator.acquire(key, ttl, owner.encode())
    if lease is None:
        holder = await coordinator.holder_info(key)
        who = f" ({holder.decode(errors='replace')})" if holder else ""
        raise GCBusy(f"another garbage collection is running{who}")
    async with lease.keepalive():
        return await collector.run(stop=lambda: lease.lost)
