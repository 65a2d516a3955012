"""A registry built by `create_app` with webhook endpoints, its lifespan running, for
tests of the events the real app emits (a real sink: `tests.support.webhook`)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from starlette.types import ASGIApp, Receive, Scope, Send

from mirror.config import parse_config
from mirror.metrics import MetricsRegistry
from mirror.proxy.app import create_app, standalone_app
from mirror.proxy.asgi import DistributionApp
from mirror.store.drivers import create_driver
from tests.support.lifespan import lifespan

UPSTREAM = "upstream.test"


def endpoint(name: str, url: str, **settings: Any) -> dict[str, Any]:
    """A `notifications.endpoints[]` entry with fast retries."""
    return {"name": name, "url": url, "threshold": 1, "backoff": "100ms", **settings}


def as_user(app: ASGIApp, user: str) -> ASGIApp:
    """What access control does for the app: the authenticated user in the scope state."""

    async def authenticated(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope.setdefault("state", {})["mirror.user"] = user
        await app(scope, receive, send)

    return authenticated


@dataclass
class Notified:
    client: httpx.AsyncClient  # the registry's
    upstream: httpx.AsyncClient  # the in-process upstream's (a mirror's origin)
    app: DistributionApp
    metrics: MetricsRegistry


@asynccontextmanager
async def notified_registry(
    root: Path,
    endpoints: Sequence[Mapping[str, Any]],
    *,
    include_references: bool = False,
    proxy: bool = False,
    user: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> AsyncIterator[Notified]:
    """A started registry on the filesystem under `root` (with `proxy`, a pull-through
    mirror of an in-process upstream)."""
    config: dict[str, Any] = {
        "storage": {"filesystem": {"rootdirectory": str(root)}, "delete": {"enabled": True}},
        "http": {"host": "http://registry.test"},
        "notifications": {
            "events": {"includereferences": include_references},
            "endpoints": list(endpoints),
        },
        **(extra or {}),
    }
    transports: dict[str, httpx.AsyncBaseTransport] = {}
    upstream_app = standalone_app(create_driver("inmemory", {}), delete_enabled=True)
    if proxy:
        config["proxy"] = {"remoteurl": f"http://{UPSTREAM}", "name": UPSTREAM, "local": ["local"]}
        transports[UPSTREAM] = httpx.ASGITransport(app=upstream_app)
    metrics = MetricsRegistry()
    app = create_app(parse_config(json.dumps(config), {}), metrics, transports=transports)
    served: ASGIApp = app if user is None else as_user(app, user)
    async with lifespan(app):
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=served), base_url="http://registry.test"
        )
        upstream = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=upstream_app), base_url=f"http://{UPSTREAM}"
        )
        try:
            yield Notified(client, upstream, app, metrics)
        finally:
            await client.aclose()
            await upstream.aclose()
