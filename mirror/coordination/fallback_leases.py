"""Coordination that survives a Redis outage: Redis leases on top of embedded ones."""

from __future__ import annotations

import time

from mirror.coordination.failover import BackendUnavailable, Failover
from mirror.coordination.leases import Coordinator, Lease, check_lease_ttl
from mirror.metrics import METRICS, MetricsRegistry


class _PairedLease(Lease):
    """An embedded lease, plus the shared one when the primary was reachable."""

    def __init__(self, local: Lease, shared: Lease | None, failover: Failover) -> None:
        token = local.token if shared is None else shared.token
        super().__init__(local.key, token, local.ttl, local.info)
        self._local = local
        self._shared = shared
        self._failover = failover

    async def renew(self) -> bool:
        held = await self._local.renew()
        if self._shared is not None:
            shared = self._shared

            async def still_ours() -> bool:
                # Nobody can take it through an unreachable Redis.
                return True

            held = await self._failover.call(shared.renew, still_ours) and held
        return held

    async def release(self) -> None:
        await self._local.release()
        if self._shared is not None:
            await self._failover.call(self._shared.release, _nothing)


async def _nothing() -> None:
    return None


class FallbackCoordinator:
    """Leases from `primary` (Redis) and `fallback` (embedded) together; only the
    fallback's while the primary is unavailable. Never raises because the primary is.

    Every lease is taken in the fallback first, then in the primary: the fallback alone
    keeps single flight within its reach (this process, or this host for a
    `FileCoordinator`) through an outage and across the moments Redis goes away or comes
    back; the primary adds the other hosts while it answers. A lease taken during an
    outage is not added to Redis when Redis returns.
    """

    def __init__(
        self,
        primary: Coordinator,
        fallback: Coordinator,
        *,
        min_backoff: float = 1.0,
        max_backoff: float = 5.0,
        metrics: MetricsRegistry = METRICS,
    ) -> None:
        self.primary = primary
        self.fallback = fallback
        self.failover = Failover(
            "coordination", min_backoff=min_backoff, max_backoff=max_backoff, metrics=metrics
        )

    async def acquire(self, key: str, ttl: float, info: bytes = b"") -> Lease | None:
        check_lease_ttl(ttl)
        local = await self.fallback.acquire(key, ttl, info)
        if local is None:
            return None
        unavailable = object()

        async def degraded() -> object:
            return unavailable

        try:
            shared: object = await self.failover.call(
                lambda: self.primary.acquire(key, ttl, info), degraded
            )
        except BaseException:
            await local.release()
            raise
        if shared is None:
            await local.release()
            return None
        return _PairedLease(local, shared if isinstance(shared, Lease) else None, self.failover)

    async def holder_info(self, key: str) -> bytes | None:
        info = await self.fallback.holder_info(key)
        if info is not None:
            return info

        async def free() -> bytes | None:
            return None

        return await self.failover.call(lambda: self.primary.holder_info(key), free)

    async def wait_released(self, key: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        if not await self.fallback.wait_released(key, timeout):
            return False
        remaining = max(0.0, deadline - time.monotonic())

        async def released() -> bool:
            # The holder elsewhere cannot be seen; let the caller try to acquire.
            return True

        return await self.failover.call(
            lambda: self.primary.wait_released(key, remaining), released
        )

    async def aclose(self) -> None:
        try:
            await self.primary.aclose()
        except BackendUnavailable:
            pass
        await self.fallback.aclose()
