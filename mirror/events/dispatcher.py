"""The dispatcher: queues each event for every endpoint that wants it, and runs one
delivery loop per endpoint.

`emit` is what the request path awaits: it appends the event to the durable queue of
each endpoint whose filters accept it and returns once those appends are committed, so
the request answers only after its events are safe. It never raises and never waits on
an endpoint: a dead endpoint costs an emit nothing more than a live one. A queue that
fails (disk full, Redis down with the local queue failing too) is logged and counted,
and the request goes on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from mirror.events.delivery import DeliveryLoop, Endpoint, EndpointStats
from mirror.events.envelope import Event

logger = logging.getLogger("mirror.events")


class Dispatcher:
    """The endpoints of one process. ``start()`` once the event loop runs; ``aclose()``
    at shutdown (it also closes the endpoints' sinks and queues)."""

    def __init__(
        self,
        endpoints: Sequence[Endpoint],
        *,
        poll_interval: float = 1.0,
        claim_ttl: float = 10.0,
    ) -> None:
        names = [endpoint.name for endpoint in endpoints]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"notification endpoint names must be unique: {duplicates}")
        self._loops = [
            DeliveryLoop(endpoint, poll_interval=poll_interval, claim_ttl=claim_ttl)
            for endpoint in endpoints
        ]
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False

    @property
    def active(self) -> bool:
        """Whether any endpoint is configured (emitting to none is a no-op)."""
        return bool(self._loops)

    async def emit(self, event: Event) -> None:
        """Queue `event` durably for every endpoint that accepts it. Never raises."""
        loops = [loop for loop in self._loops if loop.endpoint.filter.accepts(event)]
        if not loops:
            return
        payload = event.to_bytes()
        if len(loops) == 1:
            await self._append(loops[0], event, payload)
        else:
            # Each endpoint's queue is its own database: commit them side by side.
            await asyncio.gather(*(self._append(loop, event, payload) for loop in loops))

    @staticmethod
    async def _append(loop: DeliveryLoop, event: Event, payload: bytes) -> None:
        endpoint = loop.endpoint
        try:
            dropped = await endpoint.queue.append([payload])
        except Exception as exc:
            loop.stats.errors += 1
            loop.emit_log.warning(
                "notifications to %s: could not queue event %s (%s %s), it is lost: %s",
                endpoint.name,
                event.id,
                event.action,
                event.target.repository,
                exc,
            )
            return
        loop.stats.queued += 1
        if dropped:
            loop.stats.dropped += dropped
            loop.drop_log.warning(
                "notifications to %s: queue full (%d events), dropped the oldest %d "
                "(%d dropped since start)",
                endpoint.name,
                endpoint.queue.local.limit,
                dropped,
                loop.stats.dropped,
            )
        loop.wakeup.set()

    def start(self) -> None:
        """Start one delivery loop per endpoint (a task each). Idempotent."""
        if self._tasks or self._closed:
            return
        for loop in self._loops:
            logger.info(
                "notifications to %s: delivering from %s",
                loop.endpoint.name,
                loop.endpoint.queue.description,
            )
            self._tasks.append(
                asyncio.create_task(loop.run(), name=f"notifications:{loop.endpoint.name}")
            )

    async def aclose(self, grace: float = 2.0) -> None:
        """Stop the loops, letting an attempt in flight finish for up to `grace` seconds
        (then it is cancelled, and its events are delivered again after a restart);
        close sinks and queues. Events not yet delivered stay queued. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for loop in self._loops:
            loop.stop()
        if self._tasks:
            _, late = await asyncio.wait(self._tasks, timeout=grace)
            for task in late:
                task.cancel()
            results = await asyncio.gather(*self._tasks, return_exceptions=True)
            for loop, result in zip(self._loops, results, strict=True):
                if isinstance(result, Exception):
                    logger.error(
                        "notifications to %s: delivery loop failed",
                        loop.endpoint.name,
                        exc_info=result,
                    )
        for loop in self._loops:
            for close in (loop.endpoint.sink.aclose, loop.endpoint.queue.aclose):
                try:
                    await close()
                except Exception:
                    logger.exception("notifications to %s: close failed", loop.endpoint.name)

    def stats(self) -> dict[str, EndpointStats]:
        """A copy of each endpoint's counters, by endpoint name."""
        return {loop.endpoint.name: loop.snapshot() for loop in self._loops}
