"""The composition root: the only place that reads the configuration and wires the parts."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.types import ASGIApp, Receive, Scope, Send

from mirror.metrics import REGISTRY, MetricsRegistry
from mirror.proxy.asgi import RegistryApp
from mirror.proxy.call import Services
from mirror.store.driver import StorageDriver
from mirror.store.registry import RegistryStore
from mirror.store.view import LocalResolver, Resolver


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
    store: RegistryStore,
    resolver: Resolver,
    *,
    base_url: str = "",
    headers: Mapping[str, str] | None = None,
    metrics: MetricsRegistry = REGISTRY,
) -> RegistryApp:
    services = Services(store=store, resolver=resolver, base_url=base_url.rstrip("/"))
    return RegistryApp(
        services,
        extra={"/metrics": metrics_endpoint(metrics)},
        headers=headers,
        metrics=metrics,
    )


def standalone_app(
    driver: StorageDriver,
    *,
    delete_enabled: bool = False,
    read_only: bool = False,
    base_url: str = "",
) -> RegistryApp:
    """A standalone registry on `driver` (what tests and the embedded default use)."""
    store = RegistryStore(driver, delete_enabled=delete_enabled)
    return build_app(store, LocalResolver(store, read_only=read_only), base_url=base_url)
