"""The composition root: the only place that reads the configuration and wires the parts."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Awaitable, Callable, Mapping

from anyio import to_thread
from starlette.types import ASGIApp, Receive, Scope, Send

from mirror.cache.fills.manager import FillManager
from mirror.cache.pullthrough.resolver import MirrorResolver
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
from mirror.metrics import METRICS, MetricsRegistry
from mirror.proxy.asgi import DistributionApp
from mirror.proxy.call import Services
from mirror.proxy.upkeep import Periodic
from mirror.registryhttp.client import DistributionClient
from mirror.store.driver import StorageDriver
from mirror.store.drivers import create_driver
from mirror.store.store import Store
from mirror.store.view import LocalResolver, Resolver
from mirror.upstream.breaker import CircuitBreaker
from mirror.upstream.gateway import UpstreamGateway
from mirror.upstream.routing import RoutingTable, UpstreamRoute

log = logging.getLogger("mirror")

Hook = Callable[[], Awaitable[None]]
STALE_PARTIAL_AGE = 900.0  # a live download writes far more often than this


def metrics_endpoint(metrics: MetricsRegistry) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        body = metrics.render().encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/plain; version=0.0.4; charset=utf-8"),
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
) -> DistributionApp:
    served = metrics.counter(
        "mirror_served_bytes_total",
        "Blob bytes sent to clients: from the store, or following an upstream download",
        ("source",),
    )
    services = Services(
        store=store,
        resolver=resolver,
        base_url=base_url.rstrip("/"),
        on_blob_sent=lambda source, size: served.inc(source, amount=size),
    )
    return DistributionApp(
        services,
        extra={"/metrics": metrics_endpoint(metrics)},
        headers=headers,
        metrics=metrics,
        startup=startup,
        shutdown=shutdown,
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


def create_app(config: Config, metrics: MetricsRegistry = METRICS) -> DistributionApp:
    """The application described by `config`."""
    wiring = _Wiring()
    storage = config.storage
    params = {"rootdirectory": storage.root_directory} if storage.driver == "filesystem" else {}
    driver = create_driver(storage.driver, params)
    store = Store(driver, delete_enabled=storage.delete_enabled)
    resolver: Resolver
    if config.proxy is None:
        resolver = LocalResolver(store, read_only=storage.read_only)
    else:
        resolver = _mirror_resolver(config, config.proxy, store, wiring, metrics)
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
    cleanup = Periodic(
        "stale partial cleanup", lambda: store.purge_partials(STALE_PARTIAL_AGE), STALE_PARTIAL_AGE
    )
    wiring.startup.append(cleanup.start)
    wiring.shutdown.append(cleanup.stop)
    if config.cache.ephemeral:
        wiring.shutdown.append(lambda: _remove_tree(config.cache.directory))
    return build_app(
        store,
        resolver,
        base_url=config.http.external_url,
        headers=config.http.response_headers,
        metrics=metrics,
        startup=tuple(wiring.startup),
        shutdown=tuple(wiring.shutdown),
    )


def _mirror_resolver(
    config: Config,
    proxy: ProxyConfig,
    store: Store,
    wiring: _Wiring,
    metrics: MetricsRegistry,
) -> MirrorResolver:
    metadata, coordinator = _coordination(config, wiring, metrics)
    gateways: dict[str, UpstreamGateway] = {}
    routes: list[UpstreamRoute] = []
    for upstream in proxy.upstreams:
        route = UpstreamRoute(upstream.name, upstream.aliases)
        client = DistributionClient(
            upstream.remote_url,
            username=upstream.username or None,
            password=upstream.password or None,
            name=upstream.name,
            connect_timeout=proxy.timeouts.connect,
            read_timeout=proxy.timeouts.read,
        )
        wiring.shutdown.append(client.aclose)
        gateways[upstream.name] = UpstreamGateway(
            route,
            client,
            freshness=upstream.freshness,
            offline=upstream.offline,
            breaker=CircuitBreaker(proxy.breaker.failures, proxy.breaker.reset),
            metrics=metrics,
        )
        routes.append(route)
    fills = FillManager(store.blobs, coordinator, metadata, metrics=metrics)
    wiring.shutdown.insert(0, fills.aclose)
    state = PullThroughState(fills, metadata, negative_ttl=proxy.negative_ttl, metrics=metrics)
    table = RoutingTable(routes, default=proxy.default or None, local_prefixes=proxy.local)
    return MirrorResolver(store, table, gateways, state, read_only=config.storage.read_only)


def _coordination(
    config: Config, wiring: _Wiring, metrics: MetricsRegistry
) -> tuple[MetadataStore, Coordinator]:
    """Metadata and leases: embedded on the local disk, or Redis with that as fallback."""
    local_metadata: MetadataStore
    local_coordinator: Coordinator
    if config.storage.driver == "inmemory":
        local_metadata, local_coordinator = MemoryMetadataStore(), LocalCoordinator()
    else:
        directory = config.cache.directory
        local_metadata = DiskMetadataStore(os.path.join(directory, "metadata"))
        local_coordinator = FileCoordinator(os.path.join(directory, "leases"))
    wiring.shutdown.append(local_metadata.aclose)
    wiring.shutdown.append(local_coordinator.aclose)
    if config.redis is None:
        return local_metadata, local_coordinator
    redis = config.redis
    client = redis_from_config(
        redis.addr,
        redis.password or None,
        redis.db,
        username=redis.username or None,
        dial_timeout=redis.dial_timeout or 1.0,
    )
    shared_metadata = RedisMetadataStore(client)
    shared_coordinator = RedisCoordinator(client)
    wiring.shutdown.append(shared_coordinator.aclose)
    wiring.shutdown.append(client.aclose)
    return (
        FallbackMetadataStore(shared_metadata, local_metadata, metrics=metrics),
        FallbackCoordinator(shared_coordinator, local_coordinator, metrics=metrics),
    )


async def _remove_tree(path: str) -> None:
    await to_thread.run_sync(lambda: shutil.rmtree(path, ignore_errors=True))


def create_app_from_env() -> DistributionApp:
    """The ASGI factory servers call in each worker: config path from MIRROR_CONFIG."""
    config = load_config(os.environ.get("MIRROR_CONFIG") or None)
    logging.basicConfig(level=_LEVELS.get(config.log.level, logging.INFO))
    return create_app(config)


_LEVELS = {
    "error": logging.ERROR,
    "warn": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
}
