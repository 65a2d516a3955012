"""Holding a coordinator lease while a change runs: waiting a bounded time for it, and
the coordinator's own failures as the registry's errors.

Upload sessions (`mirror.store.sessions`) and tags (`mirror.store.tags`) take one around
each change, so the workers, processes and replicas serving one storage change one
session, or one tag, at a time.
"""

from __future__ import annotations

import errno
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from mirror.coordination.failover import BackendUnavailable
from mirror.coordination.leases import Coordinator, Lease
from mirror.errors import RegistryError, Unavailable
from mirror.store.faults import storage_full


@asynccontextmanager
async def exclusive(
    coordinator: Coordinator,
    key: str,
    *,
    ttl: float,
    wait: float,
    busy: Callable[[], RegistryError],
    what: str,
) -> AsyncIterator[Lease]:
    """Hold the lease on `key` while inside (renewed in the background).

    Waits up to `wait` seconds for another holder, then raises `busy()`; raises
    Unavailable when the coordinator cannot be asked (InsufficientStorage when it cannot
    write its lease files on a full disk); `what` names the thing in those messages. The
    lease is released on exit. Check `lease.lost` before making a change final: it is
    True when the lease ran out (this process stalled past its ttl) and someone else
    took it.
    """
    deadline = time.monotonic() + wait
    try:
        while True:
            lease = await coordinator.acquire(key, ttl)
            if lease is not None:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise busy()
            await coordinator.wait_released(key, remaining)
    except BackendUnavailable as exc:
        raise Unavailable(f"{what} cannot be locked now: {exc}") from None
    except OSError as exc:  # the file coordinator's own files
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise storage_full() from exc
        raise Unavailable(f"{what} cannot be locked now: {exc}") from exc
    async with lease.keepalive():
        yield lease
