"""One endpoint: its filter, its counters, and the loop that delivers its queue.

The loop takes the head of each of the endpoint's queues in turn (the shared one, then
the local one), under the queue's claim, and delivers it batch by batch: POST, and only
after a 2xx/3xx remove the batch from the queue. A failed attempt is retried as the
`Breaker` says, forever: a dead endpoint holds up only its own loop, and its queue is
bounded by its cap. A loop that is told to stop finishes the attempt in flight (bounded
by the sink's timeout) and leaves undelivered events queued for the next start.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field, replace

from mirror.coordination.failover import BackendUnavailable
from mirror.coordination.leases import Lease
from mirror.events.endpoint_queue import EndpointQueue
from mirror.events.envelope import Event
from mirror.events.queue import EventQueue, QueuedEvent, QueueError
from mirror.events.retry import Breaker
from mirror.events.sink import DeliveryFailed, Sink

logger = logging.getLogger("mirror.events")

# A problem that persists is logged again at most this often (seconds).
LOG_EVERY = 60.0


@dataclass(frozen=True, slots=True)
class EventFilter:
    """registry:2's ``ignoredmediatypes`` / ``ignore.mediatypes`` (merged) and
    ``ignore.actions``: an event matching either is not sent to the endpoint."""

    ignored_media_types: frozenset[str] = frozenset()
    ignored_actions: frozenset[str] = frozenset()

    def accepts(self, event: Event) -> bool:
        return (
            event.target.media_type not in self.ignored_media_types
            and event.action not in self.ignored_actions
        )


@dataclass(slots=True)
class EndpointStats:
    """What one process did for one endpoint since it started; `pending` is the queue's
    length (every producer's) when last looked at."""

    queued: int = 0  # events appended to the queue
    delivered: int = 0  # events the endpoint accepted
    failed: int = 0  # delivery attempts that failed (one per POST)
    dropped: int = 0  # oldest events dropped because the queue was at its cap
    errors: int = 0  # events that could not be queued (queue unusable)
    pending: int = 0
    last_error: str = ""


@dataclass(frozen=True)
class Endpoint:
    """A configured endpoint: where its events go, wait, and how they are retried."""

    name: str
    sink: Sink
    queue: EndpointQueue
    filter: EventFilter = field(default_factory=EventFilter)
    threshold: int = 10
    backoff: float = 1.0
    batch: int = 1

    def __post_init__(self) -> None:
        if self.batch < 1:
            raise ValueError(f"batch must be at least 1, not {self.batch!r}")


class RateLimitedLog:
    """Logs a recurring problem once, then a summary at most every `LOG_EVERY` seconds."""

    def __init__(self) -> None:
        self._next = 0.0
        self._suppressed = 0

    def warning(self, message: str, *args: object) -> None:
        now = time.monotonic()
        if now < self._next:
            self._suppressed += 1
            return
        if self._suppressed:
            message += " (%d more like it since the last report)"
            args = (*args, self._suppressed)
        logger.warning(message, *args)
        self._next = now + LOG_EVERY
        self._suppressed = 0

    def reset(self) -> None:
        self._next = 0.0
        self._suppressed = 0


class DeliveryLoop:
    """Delivers one endpoint's queue; `run` until `stop` (or cancellation)."""

    def __init__(
        self, endpoint: Endpoint, *, poll_interval: float = 1.0, claim_ttl: float = 10.0
    ) -> None:
        self.endpoint = endpoint
        self.stats = EndpointStats()
        self.breaker = Breaker(endpoint.threshold, endpoint.backoff)
        self.wakeup = asyncio.Event()
        self._stopping = asyncio.Event()
        self._poll = poll_interval
        self._claim_ttl = claim_ttl
        self.failure_log = RateLimitedLog()
        self.drop_log = RateLimitedLog()
        self.queue_log = RateLimitedLog()
        self.emit_log = RateLimitedLog()

    def snapshot(self) -> EndpointStats:
        return replace(self.stats)

    def stop(self) -> None:
        self._stopping.set()
        self.wakeup.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def run(self) -> None:
        queue = self.endpoint.queue
        while not self.stopping:
            # Cleared before looking, so an append during the look wakes the next wait.
            self.wakeup.clear()
            worked = False
            for source in queue.delivery_sources():
                try:
                    worked = await self._drain(source) or worked
                except (BackendUnavailable, QueueError) as exc:
                    queue.source_failed(source, exc)
                    self.queue_log.warning(
                        "notifications to %s: cannot read %s: %s",
                        self.endpoint.name,
                        source.description,
                        exc,
                    )
                except Exception:
                    # A bug must not end deliveries for good: log it, try again later.
                    logger.exception(
                        "notifications to %s: delivery from %s failed",
                        self.endpoint.name,
                        source.description,
                    )
                else:
                    queue.source_answered(source)
                if self.stopping:
                    return
            self.stats.pending = await queue.size()
            if not worked:
                try:
                    await asyncio.wait_for(self.wakeup.wait(), self._poll)
                except TimeoutError:
                    pass

    async def _drain(self, source: EventQueue) -> bool:
        """Deliver `source` from its head until it is empty; False when there was
        nothing to do here (empty, or another consumer holds the claim)."""
        if await source.size() == 0:
            return False
        claim = await source.claim(self._claim_ttl)
        if claim is None:
            return False
        delivered = False
        async with claim.keepalive():
            while await self._may_attempt(claim):
                self.stats.pending = await self.endpoint.queue.size()
                # Read again before every attempt: a retry sends what is queued now,
                # not entries the cap dropped while the endpoint was down.
                batch = await source.peek(self.endpoint.batch)
                if not batch:
                    break
                if await self._attempt(batch):
                    await source.remove([entry.key for entry in batch])
                    self.stats.delivered += len(batch)
                    delivered = True
        return delivered

    async def _may_attempt(self, claim: Lease) -> bool:
        """Wait as long as the breaker says; False when told to stop meanwhile or the
        claim was lost (what was not delivered stays queued)."""
        delay = self.breaker.delay()
        if delay > 0 and not self.stopping:
            try:
                await asyncio.wait_for(self._stopping.wait(), delay)
            except TimeoutError:
                pass
        return not self.stopping and not claim.lost

    async def _attempt(self, batch: list[QueuedEvent]) -> bool:
        """One POST of `batch`: True when the endpoint accepted it."""
        try:
            await self.endpoint.sink.write([entry.payload for entry in batch])
        except DeliveryFailed as exc:
            self.breaker.failure()
            self.stats.failed += 1
            self.stats.last_error = str(exc)
            self.failure_log.warning(
                "notifications to %s: delivery failed, retrying (%d events waiting): %s",
                self.endpoint.name,
                self.stats.pending,
                exc,
            )
            return False
        if self.breaker.failures:
            logger.info(
                "notifications to %s: delivered again after %d failed attempts",
                self.endpoint.name,
                self.breaker.failures,
            )
            self.failure_log.reset()
        self.breaker.success()
        return True
