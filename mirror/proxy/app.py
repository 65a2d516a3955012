"""The composition root: the only place that reads the configuration and wires the parts."""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import httpx
import redis.asyncio as aioredis
from anyio import to_thread
from starlette.types import ASGIApp, Receive, Scope, Send

from mirror import logs
from mirror.cache.fills.manager import FillManager
from mirror.cache.pullthrough.resolver import MirrorResolver
from mirror.cache.pullthrough.source import MirrorSource
from mirror.cache.pullthrough.state import PullThroughState
from mirror.config import Config, ProxyConfig, load_config
from mirror.coordination.fallback_leases import FallbackCoordinator
from mirror.coordination.file_leases import FileCoordinator
from mirror.coordination.leases import Coordinator, LocalCoordinator
from mirror.coordination.metadata import (
    DiskMetadataStore,
    FallbackMetadataStore,
    MemoryMetadataStore,
    MetadataStore,
)
from mirror.coordination.redis_leases import RedisCoordinator
from mirror.coordination.redis_metadata import RedisMetadataStore
from mirror.coordination.redisconn import redis_from_config
from mirror.metrics import CONTENT_TYPE, METRICS, MetricsRegistry
from mirror.proxy.asgi import DistributionApp, Wrapper
from mirror.proxy.authenticating import authentication
from mirror.proxy.call import Services
from mirror.proxy.dashboard import dashboard_wrappers
from mirror.proxy.lifecycle import lifecycle, needs_access_log
from mirror.proxy.operability import operability
from mirror.proxy.partials_api import partials_endpoint
from mirror.proxy.upkeep import Periodic
from mirror.registryhttp.client import DistributionClient
from mirror.registryhttp.tls import client_tls
from mirror.store.driver import StorageDriver
from mirror.store.drivers import create_driver
from mirror.store.ingest import peerwire
from mirror.store.ingest.remote import Cluster, Peers
from mirror.store.store import Store
from mirror.store.view import LocalResolver, Resolver
from mirror.sync.filters import TagFilter
from mirror.sync.job import SyncJob
from mirror.sync.marks import SyncMarks
from mirror.sync.syncer import Syncer, SyncTarget
from mirror.upstream.breaker import CircuitBreaker
from mirror.upstream.routing import RoutingTable, UpstreamRoute
from mirror.upstream.stack import upstream_stack

log = logging.getLogger("mirror")

Hook = Callable[[], Awaitable[None]]
STALE_PARTIAL_AGE = 900.0  # a live download writes far more often than this
# Temp files of dead writers go at start-up and then every this often (their locks tell).
TEMP_SWEEP_INTERVAL = 300.0


@dataclass(frozen=True, slots=True)
class Tuning:
    """Settings that have no configuration key (yet). The defaults are what runs in
    production; tests and embedders pass their own to `create_app`."""

    upstream_retries: int = 2  # extra tries of an idempotent upstream request
    upstream_backoff: float = 0.2  # seconds before the first retry (doubling)
    # Not configuration keys: the retries of one request stay within its deadline
    # (`proxy.timeouts`), and a failure after them falls back to the cache anyway.
    # Download pace and stalls are `proxy.timeouts.stall`, `blobminrate`, `blobratewindow`
    # and `blob`.


def metrics_endpoint(metrics: MetricsRegistry) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        body = metrics.render()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", CONTENT_TYPE.encode()),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


def build_app(
    store: Store,
    resolver: Resolver,
    *,
    base_url: str = "",
    headers: Mapping[str, str] | None = None,
    metrics: MetricsRegistry = METRICS,
    startup: tuple[Hook, ...] = (),
    shutdown: tuple[Hook, ...] = (),
    routes: Mapping[str, ASGIApp] | None = None,
    wrappers: tuple[Wrapper, ...] = (),
    origins: Mapping[str, str] | None = None,
) -> DistributionApp:
    """The app over `store` and `resolver`; `routes` are served beside the API and
    `/metrics`, `wrappers` wrap every request (see `DistributionApp`). `origins` maps
    the first component of cache repositories' names to their upstream's name."""
    served = metrics.counter(
        "mirror_served_bytes_total",
        "Blob bytes sent to clients: from the store, or following an upstream download; "
        "by the upstream the repository caches (empty: a local repository)",
        ("source", "upstream"),
    )
    upstream_of = dict(origins or {})

    def on_blob_sent(source: str, size: int, name: str) -> None:
        first, sep, _ = name.partition("/")
        served.inc(source, upstream_of.get(first, "") if sep else "", amount=size)

    services = Services(
        store=store,
        resolver=resolver,
        base_url=base_url.rstrip("/"),
        on_blob_sent=on_blob_sent,
    )
    return DistributionApp(
        services,
        extra={"/metrics": metrics_endpoint(metrics), **(routes or {})},
        headers=headers,
        metrics=metrics,
        startup=startup,
        shutdown=shutdown,
        wrappers=wrappers,
    )


def standalone_app(
    driver: StorageDriver,
    *,
    delete_enabled: bool = False,
    read_only: bool = False,
    base_url: str = "",
) -> DistributionApp:
    """A standalone registry on `driver` (for tests and embedding)."""
    store = Store(driver, delete_enabled=delete_enabled)
    return build_app(store, LocalResolver(store, read_only=read_only), base_url=base_url)


class _Wiring:
    """Collects what the app needs started and stopped."""

    def __init__(self) -> None:
        self.startup: list[Hook] = []
        self.shutdown: list[Hook] = []
        self.drain_left: Callable[[], float] = lambda: 0.0
        self.upstream_state: Callable[[str], Callable[[str], None] | None] = lambda name: None


def create_app(
    config: Config,
    metrics: MetricsRegistry = METRICS,
    *,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
    tuning: Tuning | None = None,
    driver: StorageDriver | None = None,
) -> DistributionApp:
    """The application described by `config`.

    `transports` replaces the network for the upstreams it names (by configured name):
    tests reach in-process upstreams, and inject faults, that way. Naming an upstream
    that is not configured is a ValueError. `driver` replaces the configured storage
    driver in the same way (tests inject store faults with it).
    """
    wiring = _Wiring()
    tuning = tuning or Tuning()
    storage = config.storage
    driver = driver or create_driver(storage.driver, storage.parameters)
    redis = _redis_client(config, wiring)
    ops = operability(config, driver, metrics, redis=redis)
    wiring.drain_left, wiring.upstream_state = ops.shutdown.remaining, ops.upstream_state
    coordinator = _coordinator(config, redis, wiring, metrics)
    metadata = (
        _metadata(config, redis, wiring, metrics)
        if config.proxy is not None or needs_access_log(config)
        else None
    )
    content = lifecycle(config, metadata)
    peers = _peers(config, wiring)
    store = Store(
        driver,
        delete_enabled=storage.delete_enabled,
        coordinator=coordinator,
        tracker=content.tracker,
        redirect=storage.redirect_enabled,
        spool_directory=os.path.join(config.cache.directory, "spool"),
        peers=peers,
    )
    resolver: Resolver
    if config.proxy is None:
        resolver = LocalResolver(store, read_only=storage.read_only)
    else:
        assert metadata is not None
        resolver = mirror = _mirror_resolver(
            config,
            config.proxy,
            store,
            wiring,
            metrics,
            metadata=metadata,
            coordinator=coordinator,
            transports=dict(transports or {}),
            tuning=tuning,
        )
        sync = _sync_job(config, mirror, metadata, coordinator, metrics)
        if sync is not None and not storage.read_only:
            wiring.startup.append(sync.start)
            wiring.shutdown.insert(0, sync.stop)
    purging = storage.upload_purging
    if purging.enabled and not storage.read_only:
        job = Periodic(
            "upload purging",
            lambda: store.purge_uploads(purging.age, dry_run=purging.dry_run),
            purging.interval,
            delay=min(purging.interval, 60.0),
        )
        wiring.startup.append(job.start)
        wiring.shutdown.append(job.stop)
    if metadata is not None:
        content.jobs(config, store, metadata, coordinator, metrics)
    wiring.startup += content.startup
    wiring.shutdown[0:0] = content.shutdown
    cleanup = Periodic(
        "stale partial cleanup",
        lambda: store.purge_partials(STALE_PARTIAL_AGE),
        TEMP_SWEEP_INTERVAL,
    )
    wiring.startup.append(cleanup.start)
    wiring.shutdown.append(cleanup.stop)
    if redis is not None:
        wiring.shutdown.append(redis.aclose)
    if config.cache.ephemeral:
        wiring.shutdown.append(lambda: _remove_tree(config.cache.directory))
    table = resolver.table if isinstance(resolver, MirrorResolver) else None
    auth = authentication(config, table, headers=dict(config.http.response_headers))
    resolver = ops.resolver(resolver, config.http.external_url)
    ui = dashboard_wrappers(
        config,
        store,
        resolver,
        metrics,
        metadata,
        startup=wiring.startup,
        shutdown=wiring.shutdown,
        controller=auth.controller,
    )
    return build_app(
        store,
        resolver,
        base_url=config.http.external_url,
        headers=config.http.response_headers,
        metrics=metrics,
        startup=(*wiring.startup, *ops.startup, *auth.startup),
        shutdown=(*auth.shutdown, *ops.shutdown_hooks, *wiring.shutdown),
        routes={
            **ops.routes,
            **({peerwire.PATH: partials_endpoint(store.blobs)} if peers is not None else {}),
        },
        wrappers=(*ops.wrappers, *ui, *auth.wrappers),
        origins=upstream_origins(config),
    )


def _peers(config: Config, wiring: _Wiring) -> Peers | None:
    """The other replicas' access to this one's downloads, and its to theirs
    (`cluster.advertise`; none without)."""
    cluster = config.cluster
    if not cluster.advertise:
        return None
    peers = Peers(Cluster(cluster.advertise, str(cluster.secret)))
    wiring.shutdown.append(peers.aclose)
    return peers


def _mirror_resolver(
    config: Config,
    proxy: ProxyConfig,
    store: Store,
    wiring: _Wiring,
    metrics: MetricsRegistry,
    *,
    metadata: MetadataStore,
    coordinator: Coordinator,
    transports: dict[str, httpx.AsyncBaseTransport],
    tuning: Tuning,
    prefetch: bool = True,
) -> MirrorResolver:
    unknown = set(transports) - {upstream.name for upstream in proxy.upstreams}
    if unknown:
        raise ValueError(f"transports for upstreams that are not configured: {sorted(unknown)}")
    sources: dict[str, MirrorSource] = {}
    routes: list[UpstreamRoute] = []
    for upstream in proxy.upstreams:
        route = UpstreamRoute(upstream.name, upstream.aliases)
        client = DistributionClient(
            upstream.remote_url,
            username=upstream.username or None,
            password=upstream.password or None,
            name=upstream.name,
            transport=transports.get(upstream.name),
            connect_timeout=proxy.timeouts.connect,
            read_timeout=proxy.timeouts.read,
            retries=tuning.upstream_retries,
            backoff=tuning.upstream_backoff,
            blob_min_rate=proxy.timeouts.blob_min_rate,
            blob_rate_window=proxy.timeouts.blob_rate_window,
            blob_deadline=proxy.timeouts.blob or None,
            tls=client_tls(**dataclasses.asdict(upstream.tls)),
        )
        stack = upstream_stack(
            client,
            prefix=route.prefix,
            metadata=metadata,
            negative_ttl=proxy.negative_ttl,
            offline=upstream.offline,
            breaker=CircuitBreaker(proxy.breaker.failures, proxy.breaker.reset),
            metrics=metrics,
            on_breaker=wiring.upstream_state(upstream.name),
        )
        wiring.shutdown.append(stack.aclose)
        # A sync fetches every blob itself: prefetch would only race it.
        ahead = upstream.prefetch_concurrency if prefetch and upstream.prefetch else 0
        sources[upstream.name] = MirrorSource(stack, freshness=upstream.freshness, prefetch=ahead)
        routes.append(route)
    fills = FillManager(
        store.blobs,
        coordinator,
        metadata,
        stall_timeout=proxy.timeouts.stall,
        metrics=metrics,
    )
    # Downloads get what is left of a SIGTERM drain.
    wiring.shutdown.insert(0, lambda: fills.aclose(grace=wiring.drain_left()))
    state = PullThroughState(fills, metadata, metrics=metrics)
    wiring.shutdown.insert(0, state.aclose)
    table = RoutingTable(routes, default=proxy.default or None, local_prefixes=proxy.local)
    return MirrorResolver(store, table, sources, state, read_only=config.storage.read_only)


@dataclass(slots=True)
class StoreAccess:
    """The store and the cache metadata of a configuration, without the HTTP app: what
    the commands that work on the store (export, import) use. `aclose()` when done."""

    store: Store
    metadata: MetadataStore
    origins: frozenset[str]  # the upstreams' prefixes: first components of cache repositories
    _closers: list[Hook]

    def origin_of(self, repository: str) -> str | None:
        """The prefix of the upstream `repository` is a cache of, None for a local one."""
        first = repository.split("/", 1)[0]
        return first if "/" in repository and first in self.origins else None

    async def aclose(self) -> None:
        for close in self._closers:
            await close()


def store_access(config: Config, metrics: MetricsRegistry = METRICS) -> StoreAccess:
    """The store `config` describes, its metadata store (shared through Redis when
    configured) and the prefixes of its upstreams."""
    wiring = _Wiring()
    store, metadata, _ = _store_parts(config, wiring, metrics)
    return StoreAccess(store, metadata, frozenset(upstream_origins(config)), wiring.shutdown)


def upstream_origins(config: Config) -> dict[str, str]:
    """The first component of each upstream's cache repositories -> the upstream's name."""
    upstreams = config.proxy.upstreams if config.proxy is not None else ()
    return {UpstreamRoute(u.name, u.aliases).prefix: u.name for u in upstreams}


def _store_parts(
    config: Config, wiring: _Wiring, metrics: MetricsRegistry
) -> tuple[Store, MetadataStore, Coordinator]:
    storage = config.storage
    driver = create_driver(storage.driver, storage.parameters)
    redis = _redis_client(config, wiring)
    coordinator = _coordinator(config, redis, wiring, metrics)
    store = Store(
        driver,
        delete_enabled=storage.delete_enabled,
        coordinator=coordinator,
        redirect=storage.redirect_enabled,
        spool_directory=os.path.join(config.cache.directory, "spool"),
    )
    metadata = _metadata(config, redis, wiring, metrics)
    if redis is not None:
        wiring.shutdown.append(redis.aclose)
    return store, metadata, coordinator


@dataclass(slots=True)
class SyncSession:
    """The sync of a configuration, without the HTTP app (`mirror sync`); `aclose()`."""

    job: SyncJob
    _closers: list[Hook]

    async def aclose(self) -> None:
        for close in self._closers:
            await close()


def sync_session(
    config: Config,
    metrics: MetricsRegistry = METRICS,
    *,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
    tuning: Tuning | None = None,
) -> SyncSession:
    """What `mirror serve` would sync in the background, to run by hand. Raises
    ValueError when the configuration has nothing to sync."""
    if config.proxy is None or config.sync is None or not config.sync.content:
        raise ValueError("the configuration has no sync.content to sync")
    wiring = _Wiring()
    store, metadata, coordinator = _store_parts(config, wiring, metrics)
    resolver = _mirror_resolver(
        config,
        config.proxy,
        store,
        wiring,
        metrics,
        metadata=metadata,
        coordinator=coordinator,
        transports=dict(transports or {}),
        tuning=tuning or Tuning(),
        prefetch=False,
    )
    job = _sync_job(config, resolver, metadata, coordinator, metrics)
    assert job is not None
    return SyncSession(job, wiring.shutdown)


def _sync_job(
    config: Config,
    resolver: MirrorResolver,
    metadata: MetadataStore,
    coordinator: Coordinator,
    metrics: MetricsRegistry,
) -> SyncJob | None:
    """The background sync `config.sync` asks for, None when it asks for none."""
    sync, proxy = config.sync, config.proxy
    if sync is None or proxy is None or not sync.content:
        return None
    targets = []
    for content in sync.content:
        upstream = proxy.upstream(content.upstream)
        assert upstream is not None  # the configuration checked it
        targets.append(
            SyncTarget(
                upstream.name,
                content.repositories,
                TagFilter(content.tags.regex, content.tags.semver),
                content.platforms,
                content.interval or sync.interval,
            )
        )
    marks = SyncMarks(metadata)
    syncer = Syncer(
        resolver, marks, concurrency=sync.concurrency, reserve=sync.reserve, metrics=metrics
    )
    return SyncJob(syncer, targets, coordinator, marks)


def _redis_client(config: Config, wiring: _Wiring) -> aioredis.Redis | None:
    """The one Redis client of the process, when Redis is configured (closed last)."""
    if config.redis is None:
        return None
    redis = config.redis
    client = redis_from_config(
        redis.addr,
        redis.password or None,
        redis.db,
        username=redis.username or None,
        dial_timeout=redis.dial_timeout or 1.0,
    )
    return client


def _coordinator(
    config: Config, redis: aioredis.Redis | None, wiring: _Wiring, metrics: MetricsRegistry
) -> Coordinator:
    """Leases (upload sessions, fills): between the processes of this host through lock
    files, and through Redis across hosts when it is configured, with those as fallback.
    """
    local: Coordinator
    if config.storage.driver == "inmemory":
        local = LocalCoordinator()
    else:
        local = FileCoordinator(os.path.join(config.cache.directory, "leases"))
    wiring.shutdown.append(local.aclose)
    if redis is None or config.redis is None:
        return local
    shared = RedisCoordinator(redis, config.redis.prefix)
    wiring.shutdown.append(shared.aclose)
    return FallbackCoordinator(shared, local, metrics=metrics)


def _metadata(
    config: Config, redis: aioredis.Redis | None, wiring: _Wiring, metrics: MetricsRegistry
) -> MetadataStore:
    """Small rebuildable state of the cache: on the local disk, or Redis with that as
    fallback."""
    local: MetadataStore
    if config.storage.driver == "inmemory":
        local = MemoryMetadataStore()
    else:
        local = DiskMetadataStore(os.path.join(config.cache.directory, "metadata"))
    wiring.shutdown.append(local.aclose)
    if redis is None or config.redis is None:
        return local
    shared = RedisMetadataStore(redis, config.redis.prefix)
    return FallbackMetadataStore(shared, local, metrics=metrics)


async def _remove_tree(path: str) -> None:
    await to_thread.run_sync(lambda: shutil.rmtree(path, ignore_errors=True))


def create_app_from_env() -> DistributionApp:
    """The ASGI factory servers call in each worker: config path from MIRROR_CONFIG."""
    config = load_config(os.environ.get("MIRROR_CONFIG") or None)
    if not logging.getLogger("mirror").handlers:
        # Not under `mirror serve`, whose servers configure each worker's logging.
        logs.configure(config.log.formatter, config.log.fields, config.log.level)
    return create_app(config)
