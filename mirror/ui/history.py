"""Bytes saved and fetched over time, for the cache page's plot.

Counters only say "so far"; the plot needs their past. `SavingsHistory.record` writes
the totals (every worker's, as a scrape sees them) under a key per time bucket in the
metadata store, with a ttl of `keep`: workers and replicas sharing the store write the
same bucket, the last one winning, so one series stands for the whole registry. Totals
drop when the server restarts (its counters start again); `series` adds up increases
the way Prometheus' `increase()` does, taking a drop as a restart.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from mirror.coordination.metadata import MetadataStore

log = logging.getLogger("mirror.ui")

PREFIX = "ui:savings:"
INTERVAL = 300.0
KEEP = 7 * 24 * 3600.0


@dataclass(frozen=True, slots=True)
class Totals:
    saved: float  # blob bytes of cache repositories sent from the store, so far
    fetched: float  # blob bytes received from upstreams, so far


@dataclass(frozen=True, slots=True)
class Point:
    at: float  # epoch seconds
    saved: float  # bytes saved since the first point
    fetched: float


class SavingsHistory:
    def __init__(
        self,
        metadata: MetadataStore,
        totals: Callable[[], Totals],
        *,
        interval: float = INTERVAL,
        keep: float = KEEP,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.metadata = metadata
        self.totals = totals
        self.interval = interval
        self.keep = keep
        self.clock = clock

    async def record(self) -> None:
        """Write the current totals into this moment's bucket (advisory: never raises)."""
        now = self.clock()
        totals = self.totals()
        bucket = int(now // self.interval)
        value = json.dumps({"at": now, "saved": totals.saved, "fetched": totals.fetched})
        try:
            await self.metadata.set(f"{PREFIX}{bucket:012d}", value.encode(), self.keep)
        except Exception:
            log.warning("recording the cache history failed", exc_info=True)

    async def series(self) -> list[Point]:
        """The cumulative bytes saved and fetched at each recorded moment and now."""
        raw: list[tuple[float, float, float]] = []
        try:
            async for _, value in self.metadata.scan(PREFIX):
                try:
                    doc = json.loads(value)
                    raw.append((float(doc["at"]), float(doc["saved"]), float(doc["fetched"])))
                except (ValueError, KeyError, TypeError):
                    continue
        except Exception:
            log.warning("reading the cache history failed", exc_info=True)
        totals = self.totals()
        raw.append((self.clock(), totals.saved, totals.fetched))
        return cumulative(sorted(set(raw)))


def cumulative(raw: list[tuple[float, float, float]]) -> list[Point]:
    """Running sums of the increases between successive totals. Counters start at zero
    with the server, so the first total is all increase, and so is a total below the
    one before it (the server restarted in between)."""
    points: list[Point] = []
    saved = fetched = 0.0
    last_saved = last_fetched = 0.0
    for at, s, f in raw:
        saved += s - last_saved if s >= last_saved else s
        fetched += f - last_fetched if f >= last_fetched else f
        last_saved, last_fetched = s, f
        points.append(Point(at, saved, fetched))
    return points
