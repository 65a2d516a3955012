"""What every pull-through repository shares: fills, tag stamps, coalescing, metrics.

The tag freshness stamp is a metadata record (in the `MetadataStore`; advisory: on error
it is skipped, and the worst outcome is one more upstream request):
``tag:<local name>:<tag>`` -> ``{"digest": ..., "checked": epoch}``, the digest the
upstream gave for the tag when last asked. (Negative-cache entries, ``neg:...``, belong
to the upstream's `NegativeCache`.)
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass

from mirror.cache.fills.manager import FillManager
from mirror.cache.pullthrough.prefetch import AskTracker, Prefetcher, PrefetchMetrics
from mirror.cache.pullthrough.source import MirrorSource
from mirror.coordination.metadata import MetadataStore
from mirror.coordination.singleflight import SingleFlight
from mirror.digests import Digest
from mirror.errors import DigestInvalid
from mirror.metrics import METRICS, MetricsRegistry

log = logging.getLogger("mirror.cache")

STAMP_TTL = 30 * 24 * 3600.0


@dataclass(frozen=True, slots=True)
class TagStamp:
    digest: Digest
    checked: float

    def fresh(self, ttl: float, now: float) -> bool:
        return now - self.checked < ttl


def stamp_key(local_name: str, tag: str) -> str:
    return f"tag:{local_name}:{tag}"


def stamp_value(digest: Digest, checked: float | None = None) -> bytes:
    """A stamp saying the upstream gave `digest` for the tag at `checked` (now)."""
    when = time.time() if checked is None else checked
    return json.dumps({"digest": str(digest), "checked": when}).encode()


async def write_stamp(metadata: MetadataStore, local_name: str, tag: str, digest: Digest) -> None:
    """Record that `tag` was just seen pointing at `digest` (an import does, for the
    tags it brings); raises what the metadata store raises."""
    await metadata.set(stamp_key(local_name, tag), stamp_value(digest), STAMP_TTL)


class CacheMetrics:
    def __init__(self, metrics: MetricsRegistry) -> None:
        self.hits = metrics.counter("mirror_cache_hits_total", "Served from cache", ("kind",))
        self.misses = metrics.counter(
            "mirror_cache_misses_total", "Fetched from upstream", ("kind",)
        )
        self.stale = metrics.counter(
            "mirror_stale_serves_total", "Served from cache because the upstream failed", ("kind",)
        )
        self.revalidations = metrics.counter(
            "mirror_tag_revalidations_total", "Tag checks against the upstream", ("result",)
        )


class PullThroughState:
    def __init__(
        self,
        fills: FillManager,
        metadata: MetadataStore,
        *,
        metrics: MetricsRegistry = METRICS,
    ) -> None:
        self.fills = fills
        self.metadata = metadata
        # Whole revalidations and manifest fetches (upstream requests and storing) of
        # one tag or digest are coalesced here; single upstream requests by the upstream.
        self.flights = SingleFlight()
        self.metrics = CacheMetrics(metrics)
        self._prefetch_metrics = PrefetchMetrics(metrics)
        self.asks = AskTracker(self._prefetch_metrics)
        self._prefetchers: dict[str, Prefetcher] = {}

    def prefetcher(self, source: MirrorSource) -> Prefetcher | None:
        """The prefetcher of `source`'s upstream; None when it does not prefetch."""
        if source.prefetch <= 0:
            return None
        prefetcher = self._prefetchers.get(source.name)
        if prefetcher is None:
            prefetcher = self._prefetchers[source.name] = Prefetcher(
                source.prefetch, self.asks, self._prefetch_metrics, downloading=self.fills.running
            )
        return prefetcher

    async def aclose(self) -> None:
        """Stop prefetching (downloads under way belong to the fill manager)."""
        for prefetcher in self._prefetchers.values():
            await prefetcher.aclose()

    async def stamp(self, local_name: str, tag: str) -> TagStamp | None:
        try:
            raw = await self.metadata.get(stamp_key(local_name, tag))
            if raw is None:
                return None
            doc = json.loads(raw)
            return TagStamp(Digest.parse(doc["digest"]), float(doc["checked"]))
        except (ValueError, KeyError, TypeError, DigestInvalid):
            return None
        except Exception:
            log.warning("reading tag stamp failed", exc_info=True)
            return None

    async def set_stamp(self, local_name: str, tag: str, digest: Digest) -> None:
        await self._quiet_set(stamp_key(local_name, tag), stamp_value(digest), STAMP_TTL)

    async def _quiet_set(self, key: str, value: bytes, ttl: float) -> None:
        try:
            await self.metadata.set(key, value, ttl)
        except Exception:
            log.warning("writing cache metadata failed", exc_info=True)
