"""Notification and health figures as metrics.

The dispatcher and the health registry keep their own counts; `OperabilityMetrics.update`
moves what changed since the last look into prometheus-client metrics. It runs before
each scrape of this process and every few seconds (`start`), so that with several
workers a scrape of one of them sees the others' figures too (their files are written
by that periodic update).
"""

from __future__ import annotations

from mirror.events.dispatcher import Dispatcher
from mirror.health.endpoints import Probes
from mirror.health.registry import PASSING, HealthRegistry
from mirror.metrics import MetricsRegistry
from mirror.proxy.upkeep import Periodic

SYNC_INTERVAL = 5.0
_COUNTED = ("queued", "delivered", "failed", "dropped", "errors")
_MEANING = {
    "queued": "Events queued for delivery to the endpoint",
    "delivered": "Events the endpoint accepted",
    "failed": "Delivery attempts (POSTs) that failed",
    "dropped": "Oldest events dropped because the endpoint's queue was at its cap",
    "errors": "Events that could not be queued (the queue was unusable) and are lost",
}


class OperabilityMetrics:
    def __init__(
        self,
        metrics: MetricsRegistry,
        dispatcher: Dispatcher,
        health: HealthRegistry,
        probes: Probes,
    ) -> None:
        self.dispatcher = dispatcher
        self.health = health
        self.probes = probes
        self.counters = {
            name: metrics.counter(
                f"mirror_notifications_{name}_total", _MEANING[name], ("endpoint",)
            )
            for name in _COUNTED
        }
        self.pending = metrics.gauge(
            "mirror_notifications_pending",
            "Events waiting in the endpoint's queue (every process's), when last looked at",
            ("endpoint",),
            mode="livemax",
        )
        self.checks = metrics.gauge(
            "mirror_health_check_passing",
            "1 while the health check passes, 0 while it fails or has not passed yet",
            ("check", "critical"),
            mode="livemin",
        )
        self.draining = metrics.gauge(
            "mirror_draining", "1 once a stop signal started the drain", mode="livemax"
        )
        self._seen: dict[tuple[str, str], int] = {}
        self._job = Periodic("operability metrics", self._tick, SYNC_INTERVAL, SYNC_INTERVAL)

    def update(self) -> None:
        for endpoint, stats in self.dispatcher.stats().items():
            for name in _COUNTED:
                value = int(getattr(stats, name))
                delta = value - self._seen.get((endpoint, name), 0)
                if delta > 0:
                    self.counters[name].inc(endpoint, amount=delta)
                    self._seen[(endpoint, name)] = value
            self.pending.set(endpoint, value=stats.pending)
        for status in self.health.statuses():
            passing = 1.0 if status.state == PASSING else 0.0
            self.checks.set(status.name, str(status.critical).lower(), value=passing)
        self.draining.set(value=1.0 if self.probes.draining else 0.0)

    async def _tick(self) -> None:
        self.update()

    async def start(self) -> None:
        self.update()
        await self._job.start()

    async def stop(self) -> None:
        await self._job.stop()
        self.update()
