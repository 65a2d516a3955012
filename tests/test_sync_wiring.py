"""`create_app` starts the configured sync with the server; a read-only one does not."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from mirror.config import parse_config
from mirror.metrics import MetricsRegistry
from mirror.proxy.app import Tuning, create_app, standalone_app, sync_session
from mirror.proxy.asgi import DistributionApp
from mirror.store.drivers import create_driver
from mirror.sync.job import SyncJob
from tests.support.oci import push_image

pytestmark = pytest.mark.anyio


def config_text(*, read_only: bool = False) -> str:
    storage: dict[str, object] = {"inmemory": None}
    if read_only:
        storage["maintenance"] = {"readonly": {"enabled": True}}
    return json.dumps(
        {
            "version": "0.1",
            "storage": storage,
            "proxy": {"remoteurl": "http://upstream.test", "name": "docker.io"},
            "sync": {
                "content": [
                    {
                        "upstream": "docker.io",
                        "repositories": ["library/app"],
                        "tags": {"regex": "1"},
                    }
                ]
            },
        }
    )


async def upstream_with_image() -> tuple[httpx.ASGITransport, str]:
    upstream = standalone_app(create_driver("inmemory", {}))
    transport = httpx.ASGITransport(app=upstream)
    async with httpx.AsyncClient(transport=transport, base_url="http://upstream.test") as client:
        _, digest = await push_image(client, "library/app", "1")
    return transport, digest


def app_for(text: str, transport: httpx.ASGITransport) -> DistributionApp:
    tuning = Tuning(upstream_retries=0)
    config = parse_config(text, {})
    return create_app(config, MetricsRegistry(), transports={"docker.io": transport}, tuning=tuning)


async def test_serve_syncs_in_the_background(anyio_backend: str) -> None:
    transport, digest = await upstream_with_image()
    app = app_for(config_text(), transport)
    tags = app.services.store.repository("docker.io/library/app").tags
    for hook in app.startup:
        await hook()
    try:
        for _ in range(200):
            if await tags.get("1") is not None:
                break
            await asyncio.sleep(0.05)
        assert str(await tags.get("1")) == digest
    finally:
        for hook in app.shutdown:
            await hook()


async def test_a_read_only_registry_does_not_sync() -> None:
    transport, _ = await upstream_with_image()
    plain = app_for(config_text(), transport)
    read_only = app_for(config_text(read_only=True), transport)

    def syncs(app: DistributionApp) -> bool:
        return any(isinstance(getattr(hook, "__self__", None), SyncJob) for hook in app.startup)

    assert syncs(plain) and not syncs(read_only)
    for app in (plain, read_only):
        for hook in app.shutdown:
            await hook()


async def test_sync_session_runs_one_pass() -> None:
    transport, _ = await upstream_with_image()
    session = sync_session(parse_config(config_text(), {}), transports={"docker.io": transport})
    try:
        (report,) = await session.job.run_once(force=True)
        assert report.ok and report.tags == 1 and report.updated == 1
    finally:
        await session.aclose()
    with pytest.raises(ValueError, match=r"no sync\.content"):
        sync_session(parse_config('{"storage": "inmemory"}', {}))
