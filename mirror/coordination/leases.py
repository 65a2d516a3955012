"""Leases for single-flight fills: one holder per key, across tasks or processes.

When a blob is missing, the one task that acquires the lease for it downloads it; the
others wait for the lease to be released (or to expire, when its holder died) and then
read the stored result. A lease has a ttl so that a dead holder cannot block a key
forever; a live holder keeps it with ``keepalive()``. Where a holder can be seen to have
died (a process on the same host, `mirror.coordination.liveness`), its lease is free at
once rather than at the end of its ttl.

Implementations: `LocalCoordinator` (one process), `FileCoordinator` (processes sharing a
directory; `mirror.coordination.file_leases`), `RedisCoordinator` (processes on many hosts;
`mirror.coordination.redis_leases`), and `FallbackCoordinator`
(`mirror.coordination.fallback_leases`), which degrades to an embedded coordinator while
Redis is unavailable.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Protocol

from mirror.coordination.failover import BackendUnavailable

logger = logging.getLogger("mirror.cache")


def new_token() -> str:
    """A random lease token: 32 hex characters."""
    return secrets.token_hex(16)


def check_lease_ttl(ttl: float) -> None:
    if not ttl > 0:
        raise ValueError(f"lease ttl must be positive seconds, not {ttl!r}")


class Wakeups:
    """Events of the tasks in this process that wait for keys to be released."""

    def __init__(self) -> None:
        self._events: dict[str, set[asyncio.Event]] = {}

    @contextmanager
    def watch(self, key: str) -> Iterator[asyncio.Event]:
        """An event set by `wake(key)` while inside; forgotten on exit."""
        event = asyncio.Event()
        self._events.setdefault(key, set()).add(event)
        try:
            yield event
        finally:
            events = self._events.get(key)
            if events is not None:
                events.discard(event)
                if not events:
                    del self._events[key]

    def wake(self, key: str) -> None:
        for event in self._events.get(key, ()):
            event.set()


class Lease(ABC):
    """A held lease on `key`, identified by the random `token`.

    `lost` becomes True when a renewal (by ``keepalive``) finds that the lease expired
    and another holder took the key.
    """

    def __init__(self, key: str, token: str, ttl: float, info: bytes) -> None:
        self.key = key
        self.token = token
        self.ttl = ttl
        self.info = info
        self.lost = False

    @abstractmethod
    async def renew(self) -> bool:
        """Extend the lease to a full ttl from now.

        True when this holder has the key afterwards (also when the lease had expired
        but nobody else took the key, which renewing takes back); False when another
        holder has it. Renewing never takes a key from another holder.
        """

    @abstractmethod
    async def release(self) -> None:
        """Give the key up and wake its waiters. Idempotent; never removes a lease that
        another holder took after this one expired.
        """

    @asynccontextmanager
    async def keepalive(self) -> AsyncIterator[None]:
        """Renew every ttl/3 in a background task while inside; release on exit."""
        task = asyncio.create_task(self._renew_periodically())
        try:
            yield
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            try:
                await self.release()
            except BackendUnavailable as exc:
                # The lease runs out by itself; waiters poll.
                logger.debug("release of lease %r failed: %s", self.key, exc)

    async def _renew_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.ttl / 3)
            try:
                held = await self.renew()
            except BackendUnavailable as exc:
                logger.debug("renewal of lease %r failed, retrying: %s", self.key, exc)
                continue
            except Exception:
                logger.exception("renewal of lease %r failed; no longer renewing", self.key)
                return
            if not held:
                self.lost = True
                logger.warning("lease %r was lost to another holder", self.key)
                return


class LeaseOwner(Protocol):
    """What a coordinator does for the leases it hands out."""

    async def renew_lease(self, lease: Lease) -> bool: ...

    async def release_lease(self, lease: Lease) -> None: ...


class OwnedLease(Lease):
    """A lease whose renewal and release are its coordinator's business."""

    def __init__(self, owner: LeaseOwner, key: str, token: str, ttl: float, info: bytes):
        super().__init__(key, token, ttl, info)
        self._owner = owner

    async def renew(self) -> bool:
        return await self._owner.renew_lease(self)

    async def release(self) -> None:
        await self._owner.release_lease(self)


class Coordinator(Protocol):
    """Leases keyed by arbitrary strings.

    `RedisCoordinator` raises `BackendUnavailable` when Redis cannot be reached, and
    `FileCoordinator` when a lock file stays busy; `LocalCoordinator` never does, nor
    does `FallbackCoordinator` because of its primary.
    """

    async def acquire(self, key: str, ttl: float, info: bytes = b"") -> Lease | None:
        """Take the lease on `key` for `ttl` seconds (positive, else ValueError).

        Returns None at once (without waiting) when another holder has it, it has not
        expired and its holder is not known to be dead. `info` is for others to read
        with `holder_info`.
        """
        ...

    async def holder_info(self, key: str) -> bytes | None:
        """The current holder's `info` (possibly empty), or None when the key is free."""
        ...

    async def wait_released(self, key: str, timeout: float) -> bool:
        """Wait until `key` is free: True when it is (or became) free by release or
        expiry within `timeout` seconds, False on timeout. It may already be taken
        again when this returns True; acquire to find out.
        """
        ...

    async def aclose(self) -> None:
        """Stop background work and release connections; the coordinator is not used
        afterwards. Leases held through a shared backend run out by their ttl.
        """
        ...


@dataclass
class _LocalEntry:
    token: str
    expires: float
    info: bytes
    released: asyncio.Event = field(default_factory=asyncio.Event)


class LocalCoordinator:
    """Leases among the tasks of one process (one event loop), with expiry."""

    def __init__(self) -> None:
        self._entries: dict[str, _LocalEntry] = {}

    def _current(self, key: str) -> _LocalEntry | None:
        entry = self._entries.get(key)
        if entry is not None and entry.expires <= time.monotonic():
            self._drop(key, entry)
            return None
        return entry

    def _drop(self, key: str, entry: _LocalEntry) -> None:
        del self._entries[key]
        entry.released.set()

    async def acquire(self, key: str, ttl: float, info: bytes = b"") -> Lease | None:
        check_lease_ttl(ttl)
        if self._current(key) is not None:
            return None
        token = new_token()
        self._entries[key] = _LocalEntry(token, time.monotonic() + ttl, info)
        return OwnedLease(self, key, token, ttl, info)

    async def renew_lease(self, lease: Lease) -> bool:
        entry = self._current(lease.key)
        if entry is None:
            entry = self._entries[lease.key] = _LocalEntry(lease.token, 0.0, lease.info)
        elif entry.token != lease.token:
            return False
        entry.expires = time.monotonic() + lease.ttl
        return True

    async def release_lease(self, lease: Lease) -> None:
        entry = self._entries.get(lease.key)
        if entry is not None and entry.token == lease.token:
            self._drop(lease.key, entry)

    async def holder_info(self, key: str) -> bytes | None:
        entry = self._current(key)
        return None if entry is None else entry.info

    async def wait_released(self, key: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            entry = self._current(key)
            if entry is None:
                return True
            now = time.monotonic()
            if now >= deadline:
                return False
            # Wake at expiry too: an expired holder never sets the event itself.
            try:
                await asyncio.wait_for(entry.released.wait(), min(deadline, entry.expires) - now)
            except TimeoutError:
                continue
            return True

    async def aclose(self) -> None:
        for key, entry in list(self._entries.items()):
            self._drop(key, entry)
