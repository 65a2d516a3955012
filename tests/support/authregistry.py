"""A registry built by `create_app` with an `auth` block, its lifespan running, for API
tests of access control (and an in-process upstream, for a mirror)."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bcrypt
import httpx

from mirror.config import Config, parse_config
from mirror.metrics import MetricsRegistry
from mirror.proxy.app import create_app, standalone_app
from mirror.proxy.asgi import DistributionApp
from mirror.store.drivers import create_driver
from tests.support.lifespan import lifespan

UPSTREAM = "upstream.test"
PASSWORDS = {"alice": "wonderland", "bob": "builder", "carol": "singer"}


def write_htpasswd(path: Path, passwords: Mapping[str, str] = PASSWORDS) -> Path:
    """An htpasswd file of bcrypt entries (cost 4: fast tests)."""
    lines = [
        f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()}"
        for user, password in passwords.items()
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def basic(user: str, password: str | None = None) -> dict[str, str]:
    """The Authorization header of `user` (with their password from PASSWORDS)."""
    secret = PASSWORDS[user] if password is None else password
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()}


@dataclass
class AuthRegistry:
    client: httpx.AsyncClient  # the registry's, without credentials
    upstream: httpx.AsyncClient  # the in-process upstream's (open: no auth)
    app: DistributionApp
    config: Config


def registry_config(
    root: Path, auth: Mapping[str, Any], *, proxy: bool = False, **extra: Any
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "storage": {"filesystem": {"rootdirectory": str(root)}, "delete": {"enabled": True}},
        "http": {"host": "http://registry.test"},
        "auth": dict(auth),
        **extra,
    }
    if proxy:
        config["proxy"] = {"remoteurl": f"http://{UPSTREAM}", "name": UPSTREAM, "local": ["local"]}
    return config


@asynccontextmanager
async def auth_registry(
    root: Path, auth: Mapping[str, Any], *, proxy: bool = False, **extra: Any
) -> AsyncIterator[AuthRegistry]:
    """A started registry on the filesystem under `root` with `auth` as its auth block."""
    config = parse_config(json.dumps(registry_config(root, auth, proxy=proxy, **extra)), {})
    transports: dict[str, httpx.AsyncBaseTransport] = {}
    upstream_app = standalone_app(create_driver("inmemory", {}), delete_enabled=True)
    if proxy:
        transports[UPSTREAM] = httpx.ASGITransport(app=upstream_app)
    app = create_app(config, MetricsRegistry(), transports=transports)
    async with lifespan(app):
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://registry.test"
        )
        upstream = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=upstream_app), base_url=f"http://{UPSTREAM}"
        )
        try:
            yield AuthRegistry(client, upstream, app, config)
        finally:
            await client.aclose()
            await upstream.aclose()
