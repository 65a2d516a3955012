"""The composition root's part for notifications, health, the debug listener and the
SIGTERM drain: `operability(config, ...)` builds them from the configuration (this
module reads it, as `proxy/app.py` does) and says what the app must start, stop, route
and wrap.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis.asyncio as aioredis
from starlette.types import ASGIApp, Receive, Scope, Send

from mirror.config import Config
from mirror.config.addresses import split_host_port
from mirror.events.builder import EventBuilder
from mirror.events.envelope import SourceRecord
from mirror.events.notifier import Notifier
from mirror.events.setup import EndpointSettings, build_dispatcher
from mirror.health.checks import FileCheck, HttpCheck, StorageCheck, TcpCheck
from mirror.health.endpoints import Probes, debug_health_app
from mirror.health.registry import HealthRegistry
from mirror.metrics import CONTENT_TYPE, MetricsRegistry
from mirror.proxy.debuglistener import DebugListener, debug_app
from mirror.proxy.notifying import NotifyingResolver, bind_scope
from mirror.proxy.opsmetrics import OperabilityMetrics
from mirror.proxy.shutdown import GracefulShutdown
from mirror.store.driver import StorageDriver
from mirror.store.view import Resolver

Hook = Callable[[], Awaitable[None]]
Wrapper = Callable[[ASGIApp], ASGIApp]


@dataclass
class Operability:
    """What `create_app` adds to the app: routes, request wrappers, hooks."""

    health: HealthRegistry
    probes: Probes
    notifier: Notifier
    shutdown: GracefulShutdown
    routes: dict[str, ASGIApp] = field(default_factory=dict)
    wrappers: list[Wrapper] = field(default_factory=list)
    startup: list[Hook] = field(default_factory=list)
    # Run first at shutdown: before the stores, fills and Redis close.
    shutdown_hooks: list[Hook] = field(default_factory=list)

    def resolver(self, inner: Resolver, base_url: str) -> Resolver:
        """`inner` with the views wrapped to emit events (as is, with no endpoint)."""
        if not self.notifier.active:
            return inner
        return NotifyingResolver(inner, self.notifier, base_url=base_url)

    def upstream_state(self, name: str) -> Callable[[str], None]:
        """The breaker's state hook for upstream `name`: reported, never critical (a
        mirror that cannot reach an upstream still serves its cache)."""
        state = self.health.state(f"upstream_{name}", critical=False)

        def changed(breaker: str) -> None:
            if breaker == "open":
                state.update("circuit open: the upstream failed repeatedly")
            elif breaker == "closed":
                state.update(None)

        return changed


def operability(
    config: Config,
    driver: StorageDriver,
    metrics: MetricsRegistry,
    *,
    redis: aioredis.Redis | None,
    notification_transport: httpx.AsyncBaseTransport | None = None,
) -> Operability:
    health = _health(config, driver)
    probes = Probes(health)
    notifier = _notifier(config, redis, notification_transport)
    shutdown = GracefulShutdown(probes.drain, config.http.drain_timeout)
    ops = Operability(health, probes, notifier, shutdown)
    ops.routes.update({"/livez": probes, "/readyz": probes})
    ops.wrappers += [shutdown.wrap, bind_scope]
    figures = OperabilityMetrics(metrics, notifier.dispatcher, health, probes)
    metrics.before_render(figures.update)
    ops.startup += [shutdown.start, _started(health.start), _started(notifier.dispatcher.start)]
    ops.startup.append(figures.start)
    ops.shutdown_hooks += [figures.stop, notifier.dispatcher.aclose, health.aclose, shutdown.stop]
    debug = config.http.debug
    if debug.addr:
        listener = DebugListener(_debug_routes(config, health, metrics), *_bind_of(debug.addr))
        ops.startup.append(listener.start)
        ops.shutdown_hooks.insert(0, listener.aclose)
    return ops


def _started(start: Callable[[], None]) -> Hook:
    async def hook() -> None:
        start()

    return hook


def _health(config: Config, driver: StorageDriver) -> HealthRegistry:
    registry = HealthRegistry()
    health = config.health
    storage = health.storagedriver
    if storage.enabled:
        registry.add(
            f"storagedriver_{config.storage.driver}",
            StorageCheck(driver),
            interval=storage.interval,
            threshold=storage.threshold,
        )
    names: set[str] = set()

    def unique(name: str) -> str:
        # registry:2 names a check by its file, URI or address; the same one twice is
        # still two checks.
        found, n = name, 1
        while found in names:
            n += 1
            found = f"{name}#{n}"
        names.add(found)
        return found

    for check in health.file:
        registry.add(unique(check.file), FileCheck(check.file), interval=check.interval)
    for http in health.http:
        registry.add(
            unique(http.uri),
            HttpCheck(
                http.uri,
                headers=dict(http.headers),
                statuscode=http.statuscode,
                timeout=http.timeout,
            ),
            interval=http.interval,
            threshold=http.threshold,
            timeout=http.timeout + 1.0,
        )
    for tcp in health.tcp:
        registry.add(
            unique(tcp.addr),
            TcpCheck(tcp.addr, timeout=tcp.timeout),
            interval=tcp.interval,
            threshold=tcp.threshold,
            timeout=tcp.timeout + 1.0,
        )
    return registry


def _notifier(
    config: Config,
    redis: aioredis.Redis | None,
    transport: httpx.AsyncBaseTransport | None,
) -> Notifier:
    notifications = config.notifications
    endpoints = [
        EndpointSettings(
            name=endpoint.name,
            url=endpoint.url,
            headers=dict(endpoint.headers),
            timeout=endpoint.timeout,
            threshold=endpoint.threshold,
            backoff=endpoint.backoff,
            ignored_media_types=endpoint.all_ignored_media_types,
            ignored_actions=frozenset(endpoint.ignore.actions),
            disabled=endpoint.disabled,
            queue_limit=endpoint.queue_limit,
            batch=endpoint.max_batch,
        )
        for endpoint in notifications.endpoints
    ]
    dispatcher = build_dispatcher(
        endpoints,
        directory=Path(config.cache.directory) / "events",
        redis=redis,
        redis_prefix=config.redis.prefix if config.redis is not None else "mirror:",
        transport=transport,
    )
    source = SourceRecord(f"{socket.gethostname()}:{config.http.bind_port}", str(uuid.uuid4()))
    builder = EventBuilder(source, include_references=notifications.events.include_references)
    return Notifier(builder, dispatcher)


def _bind_of(addr: str) -> tuple[str, int]:
    found = split_host_port(addr, any_host=True)
    if found is None:  # pragma: no cover - the configuration refused it
        raise ValueError(f"not a listen address: {addr!r}")
    host, port = found
    if not host:
        return "0.0.0.0", port
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return host, port  # binding says what is wrong, in the listener's log line
    return str(infos[0][4][0]), port


def _debug_routes(config: Config, health: HealthRegistry, metrics: MetricsRegistry) -> ASGIApp:
    routes: dict[str, ASGIApp] = {"/debug/health": debug_health_app(health)}
    prometheus = config.http.debug.prometheus
    if prometheus.enabled:
        routes[prometheus.path] = metrics_app(metrics)
    return debug_app(routes)


def metrics_app(metrics: MetricsRegistry) -> ASGIApp:
    """The Prometheus exposition of `metrics` (every worker's, with several)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        body = metrics.render()
        headers = [
            (b"content-type", CONTENT_TYPE.encode()),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app
