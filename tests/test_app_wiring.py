"""The composition root wires what the configuration says; upkeep jobs do their work."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import httpx
import pytest

from mirror.config import parse_config
from mirror.metrics import MetricsRegistry
from mirror.proxy.app import create_app
from mirror.proxy.asgi import DistributionApp
from mirror.store.drivers import create_driver
from mirror.store.store import Store
from tests.support.oci import push_image

pytestmark = pytest.mark.anyio


async def lifespan(app: DistributionApp, event: str) -> str:
    sent: list[str] = []

    async def receive() -> dict[str, str]:
        return {"type": f"lifespan.{event}"}

    async def send(message: dict[str, str]) -> None:
        sent.append(message["type"])
        if len(sent) == 1:
            raise _Done

    class _Done(Exception):
        pass

    try:
        await app({"type": "lifespan"}, receive, send)  # type: ignore[arg-type]
    except _Done:
        pass
    return sent[0]


def config(tmp_path: Path, extra: str = "") -> str:
    return f"""
version: 0.1
storage:
  filesystem: {{rootdirectory: {tmp_path}/root}}
  delete: {{enabled: true}}
http: {{addr: "127.0.0.1:5000", host: "https://registry.example"}}
{extra}
"""


async def test_standalone_from_config(tmp_path: Path) -> None:
    app = create_app(parse_config(config(tmp_path), {}), MetricsRegistry())
    assert await lifespan(app, "startup") == "lifespan.startup.complete"
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
        _, digest = await push_image(client, "team/app", "v1")
        r = await client.post("/v2/team/app/blobs/uploads/")
        assert r.headers["location"].startswith("https://registry.example/v2/team/app/")
        assert (await client.delete(f"/v2/team/app/manifests/{digest}")).status_code == 202
    assert await lifespan(app, "shutdown") == "lifespan.shutdown.complete"


async def test_mirror_with_redis_from_config(tmp_path: Path) -> None:
    extra = """
redis: {addr: "127.0.0.1:1"}
proxy:
  remoteurl: http://127.0.0.1:1
  name: upstream.test
  local: [mine/]
"""
    app = create_app(parse_config(config(tmp_path, extra), {}), MetricsRegistry())
    assert await lifespan(app, "startup") == "lifespan.startup.complete"
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
        r = await client.get("/v2/library/app/manifests/v1?ns=upstream.test")
        assert r.status_code == 503  # nothing listens there; never a 500
        await push_image(client, "mine/app", "v1")
        r = await client.post("/v2/upstream.test/x/blobs/uploads/")
        assert r.status_code == 403
    assert await lifespan(app, "shutdown") == "lifespan.shutdown.complete"


def test_transports_must_name_configured_upstreams(tmp_path: Path) -> None:
    extra = """
proxy:
  remoteurl: http://127.0.0.1:1
  name: upstream.test
"""
    parsed = parse_config(config(tmp_path, extra), {})
    transport = httpx.MockTransport(lambda request: httpx.Response(500))
    with pytest.raises(ValueError, match=r"not configured: \['other.test'\]"):
        create_app(parsed, MetricsRegistry(), transports={"other.test": transport})


async def test_purge_uploads(tmp_path: Path) -> None:
    store = Store(create_driver("filesystem", {"rootdirectory": str(tmp_path)}))
    old = await store.repository("a/b").uploads.start()
    await store.repository("c").uploads.start()
    assert await store.purge_uploads(3600) == []
    assert len(await store.purge_uploads(0, dry_run=True)) == 2
    purged = await store.purge_uploads(0)
    assert f"a/b/{old.id}" in purged and len(purged) == 2
    assert await store.purge_uploads(0) == []


async def test_purge_partials(tmp_path: Path) -> None:
    store = Store(create_driver("filesystem", {"rootdirectory": str(tmp_path)}))
    stale = tmp_path / "blobs" / f".data.tmp-{uuid.uuid4().hex}"
    fresh = tmp_path / "blobs" / f".data.tmp-{uuid.uuid4().hex}"
    keep = tmp_path / "blobs" / "data"
    stale.parent.mkdir()
    for path in (stale, fresh, keep):
        path.write_bytes(b"x")
    past = time.time() - 7200
    os.utime(stale, (past, past))
    os.utime(keep, (past, past))
    assert await store.purge_partials(3600) == 1
    assert not stale.exists() and fresh.exists() and keep.exists()
    assert await Store(create_driver("inmemory", {})).purge_partials(0) == 0
