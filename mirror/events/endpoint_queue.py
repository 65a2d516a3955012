"""Where one endpoint's events wait: the shared queue while it answers, else the local one.

Without Redis an endpoint has only its local (disk) queue. With Redis, events go to the
Redis stream, so that any replica may deliver them; while Redis cannot be reached they
go to the local queue instead (logged once per outage and counted by the `Failover`, as
`mirror.coordination` does for leases and metadata), and the delivery loop drains both.
Nothing is copied between the two: each event is in exactly one of them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from mirror.coordination.failover import BackendUnavailable, Failover
from mirror.events.queue import EventQueue, QueueError

logger = logging.getLogger("mirror.events")


class EndpointQueue:
    """An endpoint's `local` queue, with `shared` (Redis) in front when given."""

    def __init__(
        self,
        local: EventQueue,
        shared: EventQueue | None = None,
        *,
        failover: Failover | None = None,
    ) -> None:
        self.local = local
        self.shared = shared
        self.failover = failover or Failover("events")

    @property
    def description(self) -> str:
        if self.shared is None:
            return self.local.description
        return f"{self.shared.description}, falling back to {self.local.description}"

    async def append(self, payloads: Sequence[bytes]) -> int:
        """Append to the shared queue, or to the local one while the shared one is down.

        Returns the number of old entries dropped (see `EventQueue.append`). Raises
        `QueueError` when the local queue fails too.
        """
        shared = self.shared
        if shared is None:
            return await self.local.append(payloads)
        return await self.failover.call(
            lambda: shared.append(payloads), lambda: self.local.append(payloads)
        )

    def delivery_sources(self) -> list[EventQueue]:
        """The queues to deliver from now: the shared one unless it is known to be down
        (and not yet due for a retry), then the local one."""
        sources: list[EventQueue] = []
        if self.shared is not None and self.failover.should_try():
            sources.append(self.shared)
        sources.append(self.local)
        return sources

    def source_failed(self, source: EventQueue, exc: BaseException) -> None:
        """Tell the failover that the delivery loop found `source` unreachable."""
        if source is self.shared and isinstance(exc, BackendUnavailable):
            self.failover.failed(exc)

    def source_answered(self, source: EventQueue) -> None:
        if source is self.shared:
            self.failover.succeeded()

    async def size(self) -> int:
        """Entries waiting in the queues that can be counted now."""
        total = 0
        for source in (self.shared, self.local):
            if source is None:
                continue
            try:
                total += await source.size()
            except (BackendUnavailable, QueueError) as exc:
                logger.debug("cannot count %s: %s", source.description, exc)
        return total

    async def aclose(self) -> None:
        if self.shared is not None:
            try:
                await self.shared.aclose()
            except BackendUnavailable:
                pass
        await self.local.aclose()
