"""The composition root's part for content lifecycle: the access log the store reports
to, online garbage collection (`storage.maintenance.gc`) and cache eviction
(`proxy.ttl`, `cache.maxsize`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from mirror.config import Config
from mirror.coordination.accesslog import DEFAULT_RETENTION, MetadataAccessLog
from mirror.coordination.leases import Coordinator
from mirror.coordination.metadata import FallbackMetadataStore, MetadataStore
from mirror.lifecycle.eviction import EvictionPolicy, Evictor
from mirror.lifecycle.evictjob import EvictionJob
from mirror.lifecycle.online import OnlineCollector
from mirror.metrics import MetricsRegistry
from mirror.proxy.upkeep import Periodic
from mirror.store.store import Store
from mirror.store.tracking import ContentTracker
from mirror.sync.marks import SyncMarks
from mirror.upstream.routing import UpstreamRoute

Hook = Callable[[], Awaitable[None]]
FIRST_GC_AFTER = 60.0  # seconds after start-up: let the server settle first


def needs_access_log(config: Config) -> bool:
    """Whether anything reads access times: online GC, or eviction of a cache."""
    if config.storage.maintenance.gc.enabled:
        return True
    proxy = config.proxy
    return proxy is not None and (
        config.cache.maxsize > 0 or any(u.ttl > 0 for u in proxy.upstreams)
    )


@dataclass(slots=True)
class Lifecycle:
    """What `create_app` needs: the tracker to build the `Store` with, then `start`."""

    tracker: ContentTracker
    access_log: MetadataAccessLog | None
    startup: list[Hook] = field(default_factory=list)
    shutdown: list[Hook] = field(default_factory=list)

    def jobs(
        self,
        config: Config,
        store: Store,
        metadata: MetadataStore,
        coordinator: Coordinator,
        metrics: MetricsRegistry,
    ) -> None:
        """Add the background jobs `config` asks for (none on a read-only store)."""
        gc = config.storage.maintenance.gc
        log = self.access_log
        if log is None or config.storage.read_only:
            return
        if gc.enabled:
            failover = metadata.failover if isinstance(metadata, FallbackMetadataStore) else None
            collector = OnlineCollector(
                store.driver,
                coordinator,
                log,
                delay=gc.delay,
                delete_untagged=gc.delete_untagged,
                degraded=(lambda: failover.down) if failover is not None else (lambda: False),
                schedule=metadata,
                interval=gc.interval,
                metrics=metrics,
            )
            job = Periodic(
                "garbage collection",
                collector.run_once,
                gc.interval,
                delay=min(gc.interval, FIRST_GC_AFTER),
            )
            self.startup.append(job.start)
            self.shutdown.insert(0, job.stop)
        eviction = eviction_job(
            config, store, log, metadata=metadata, coordinator=coordinator, metrics=metrics
        )
        if eviction is not None:
            self.tracker.on_fill.append(eviction.filled)
            self.startup.append(eviction.start)
            self.shutdown.insert(0, eviction.stop)


def lifecycle(config: Config, metadata: MetadataStore | None) -> Lifecycle:
    """The tracker for the store (reporting to the access log when anything reads it)."""
    if metadata is None or not needs_access_log(config):
        return Lifecycle(ContentTracker(), None)
    # Access times outlive the longest ttl: a forgotten one would make an image look as
    # old as its files.
    longest = max([0.0, *origins(config).values()])
    log = MetadataAccessLog(metadata, retention=max(DEFAULT_RETENTION, 2 * longest))
    tracker = ContentTracker(log, log)
    parts = Lifecycle(tracker, log)
    parts.shutdown += [tracker.aclose, log.aclose]
    return parts


def origins(config: Config) -> dict[str, float]:
    """The prefix of each upstream (the first component of its cache repositories) with
    its ttl."""
    upstreams = config.proxy.upstreams if config.proxy is not None else ()
    return {UpstreamRoute(u.name, u.aliases).prefix: u.ttl for u in upstreams}


def origin_function(config: Config) -> Callable[[str], str | None]:
    """Which upstream a stored repository caches (its prefix), None for a local one."""
    prefixes = frozenset(origins(config))

    def origin_of(repository: str) -> str | None:
        first = repository.split("/", 1)[0]
        return first if "/" in repository and first in prefixes else None

    return origin_of


def eviction_job(
    config: Config,
    store: Store,
    log: MetadataAccessLog,
    *,
    metadata: MetadataStore,
    coordinator: Coordinator,
    metrics: MetricsRegistry,
) -> EvictionJob | None:
    """The eviction `proxy.ttl` and `cache.maxsize` ask for, None when they ask none."""
    if config.proxy is None:
        return None
    policy = EvictionPolicy(maxsize=config.cache.maxsize, ttls=origins(config))
    if not policy.active:
        return None
    evictor = Evictor(
        store,
        log,
        log,
        policy,
        origin_of=origin_function(config),
        sync_marks=SyncMarks(metadata),
    )
    return EvictionJob(evictor, coordinator, metadata, metrics=metrics)
