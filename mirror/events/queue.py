"""The durable, bounded queue of one endpoint's events, and its contract.

Implementations: `mirror.events.disk_queue.DiskEventQueue` (diskcache on local disk,
shared by the processes of one host), `mirror.events.redis_queue.RedisEventQueue` (a
Redis stream, shared by replicas), and `mirror.events.endpoint_queue.EndpointQueue`,
which appends to Redis while it answers and to the local queue while it does not.

Delivery takes the head in order: whoever holds the queue's claim reads the oldest
entries (`peek`), delivers them, and only then removes them (`remove`). An entry is thus
removed only after delivery, and a consumer killed in between leaves it at the head for
the next claimant: at least once, never lost. The claim keeps two consumers (worker
processes, replicas) from delivering the same entries, except when a claim expires under
a holder that is still delivering, which costs a duplicate (the event id tells).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from mirror.coordination.leases import Lease


class QueueError(Exception):
    """A local queue could not be read or written (disk full, I/O error, database busy).

    Internal to the events package: emitting logs and counts it, the delivery loop
    retries later. A shared queue that is unreachable raises
    `mirror.coordination.failover.BackendUnavailable` instead.
    """


@dataclass(frozen=True, slots=True)
class QueuedEvent:
    """A queued event: its key in the queue (opaque, for `remove`) and its bytes."""

    key: str
    payload: bytes


class EventQueue(Protocol):
    """A FIFO of serialised events, persistent across restarts and SIGKILL.

    Bounded by `limit` entries: appending beyond it drops the oldest. Every method may
    raise `QueueError` (local) or `BackendUnavailable` (shared) and nothing else for a
    failing backend.
    """

    @property
    def description(self) -> str:
        """Where the entries live, for logs (``disk /path``, ``redis key``)."""
        ...

    @property
    def limit(self) -> int: ...

    async def append(self, payloads: Sequence[bytes]) -> int:
        """Add `payloads` at the tail, in order, atomically with the trimming.

        Durable when it returns: committed to the database or to Redis, so a SIGKILL
        right after loses nothing. Returns how many of the oldest entries were dropped to
        stay within `limit` (the new entries themselves when more than `limit` of them
        are appended at once).
        """
        ...

    async def claim(self, ttl: float) -> Lease | None:
        """The exclusive right to deliver from the head, or None at once when another
        consumer holds it. The caller keeps it (``keepalive``) while delivering and
        releases it when done; a killed holder's claim ends by itself (at once for the
        disk queue, after `ttl` seconds for a shared one)."""
        ...

    async def peek(self, limit: int) -> list[QueuedEvent]:
        """Up to `limit` of the oldest entries, oldest first, without removing them."""
        ...

    async def remove(self, keys: Sequence[str]) -> None:
        """Remove the entries with these keys. Idempotent: keys already gone (removed,
        or dropped by the limit meanwhile) are ignored; other entries are never touched.
        """
        ...

    async def size(self) -> int:
        """Entries waiting now (all producers')."""
        ...

    async def aclose(self) -> None:
        """Release files and connections; entries stay for the next start."""
        ...


def check_limit(limit: int) -> int:
    if limit < 1:
        raise ValueError(f"queue limit must be at least 1, not {limit!r}")
    return limit
