"""The composition root's part for the dashboard (`http.ui`): what `mirror.ui` reads,
from the configuration, and the wrapper that serves it on the main port."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from mirror.auth.controller import AccessController
from mirror.config import Config
from mirror.coordination.metadata import MetadataStore
from mirror.metrics import MetricsRegistry
from mirror.proxy.asgi import Wrapper
from mirror.proxy.upkeep import Periodic
from mirror.store.store import Store
from mirror.store.view import Resolver
from mirror.ui.access import controller_permissions, everything
from mirror.ui.app import Dashboard, DashboardParts
from mirror.ui.catalog import UpstreamInfo
from mirror.upstream.routing import UpstreamRoute

Hook = Callable[[], Awaitable[None]]


def dashboard_wrappers(
    config: Config,
    store: Store,
    resolver: Resolver,
    metrics: MetricsRegistry,
    metadata: MetadataStore | None,
    *,
    startup: list[Hook],
    shutdown: list[Hook],
    controller: AccessController | None = None,
) -> tuple[Wrapper, ...]:
    """The dashboard's wrapper (none with `http.ui.enabled: false`); its history
    recorder joins `startup` / `shutdown`. `controller`: the access controller requests
    are authorised by, when authentication is configured."""
    if not config.http.ui.enabled:
        return ()
    upstreams = tuple(
        UpstreamInfo(
            u.name, UpstreamRoute(u.name, u.aliases).prefix, _without_credentials(u.remote_url)
        )
        for u in (config.proxy.upstreams if config.proxy is not None else ())
    )
    host = urlsplit(config.http.external_url).netloc if config.http.external_url else ""
    dashboard = Dashboard(
        DashboardParts(
            store=store,
            resolver=resolver,
            metrics=metrics,
            upstreams=upstreams,
            metadata=metadata,
            permissions=everything if controller is None else controller_permissions(controller),
            read_only=config.storage.read_only,
            registry_host=host,
        )
    )
    if dashboard.history is not None:
        recorder = Periodic(
            "dashboard history", dashboard.record_history, dashboard.history.interval, delay=0.0
        )
        startup.append(recorder.start)
        shutdown.append(recorder.stop)
    return (dashboard.wrap,)


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    netloc = parts.hostname or ""
    if parts.port is not None:
        netloc = f"{netloc}:{parts.port}"
    return parts._replace(netloc=netloc).geturl()
