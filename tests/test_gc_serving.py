"""`storage.maintenance.gc`: the collection runs inside `mirror serve`, on its schedule,
with the store's access log; deleted content goes, content in use stays."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from mirror.config import parse_config
from mirror.coordination.accesslog import MetadataAccessLog
from mirror.coordination.leases import LocalCoordinator
from mirror.coordination.metadata import MemoryMetadataStore
from mirror.lifecycle.collector import LEASE_KEY
from mirror.lifecycle.online import OnlineCollector
from mirror.metrics import MetricsRegistry
from mirror.proxy.app import create_app
from mirror.store.drivers import create_driver
from tests.support.lifespan import lifespan
from tests.support.oci import push_image

pytestmark = pytest.mark.anyio


def config(tmp_path: Path, gc: str) -> str:
    return f"""
version: 0.1
storage:
  filesystem: {{rootdirectory: {tmp_path}/root}}
  delete: {{enabled: true}}
  maintenance: {{gc: {gc}}}
http: {{addr: "127.0.0.1:5000"}}
"""


def blob_files(tmp_path: Path) -> set[str]:
    root = tmp_path / "root/docker/registry/v2/blobs"
    return {p.parent.name for p in root.rglob("data")}


async def test_the_online_collection_frees_deleted_images_and_keeps_the_rest(
    tmp_path: Path,
) -> None:
    metrics = MetricsRegistry()
    gc = "{enabled: true, interval: 0.3s, delay: 0.2s}"
    app = create_app(parse_config(config(tmp_path, gc), {}), metrics)
    async with lifespan(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
            kept_raw, kept = await push_image(client, "team/kept", "v1", seed=1)
            gone_raw, gone = await push_image(client, "team/gone", "v1", seed=2)
            assert (await client.delete(f"/v2/team/gone/manifests/{gone}")).status_code == 202
            gone_layers = {d["digest"].split(":")[1] for d in json.loads(gone_raw)["layers"]}
            for _ in range(100):
                if not gone_layers & blob_files(tmp_path):
                    break
                await asyncio.sleep(0.1)
            assert not gone_layers & blob_files(tmp_path)
            r = await client.get(f"/v2/team/kept/manifests/{kept}")
            assert r.status_code == 200 and r.content == kept_raw
            for layer in json.loads(kept_raw)["layers"]:
                r = await client.get(f"/v2/team/kept/blobs/{layer['digest']}")
                assert r.status_code == 200 and len(r.content) == layer["size"]
    assert metrics.counter("mirror_gc_runs_total", "", ("outcome",)).get("completed") >= 1
    freed = metrics.counter("mirror_gc_freed_bytes_total", "").get()
    assert freed >= sum(d["size"] for d in json.loads(gone_raw)["layers"])


async def test_gc_off_by_default_removes_nothing(tmp_path: Path) -> None:
    app = create_app(parse_config(config(tmp_path, "{}"), {}), MetricsRegistry())
    async with lifespan(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
            _, digest = await push_image(client, "team/gone", "v1", seed=2)
            assert (await client.delete(f"/v2/team/gone/manifests/{digest}")).status_code == 202
            before = blob_files(tmp_path)
            await asyncio.sleep(0.5)
    assert blob_files(tmp_path) == before and len(before) == 4


async def test_a_run_waits_for_a_brief_holder_of_the_lease_and_skips_when_degraded(
    tmp_path: Path,
) -> None:
    driver = create_driver("inmemory", {})
    coordinator = LocalCoordinator()
    log = MetadataAccessLog(MemoryMetadataStore())
    metrics = MetricsRegistry()
    runs = metrics.counter("mirror_gc_runs_total", "", ("outcome",))
    collector = OnlineCollector(
        driver, coordinator, log, delay=60.0, metrics=metrics, busy_wait=0.05
    )
    lease = await coordinator.acquire(LEASE_KEY, 10.0, b"an eviction pass")
    assert lease is not None

    async def release_soon() -> None:
        await asyncio.sleep(0.2)
        await lease.release()

    released = asyncio.create_task(release_soon())
    assert await collector.run_once() is not None
    await released
    assert runs.get("completed") == 1
    degraded = OnlineCollector(
        driver, coordinator, log, delay=60.0, metrics=metrics, degraded=lambda: True
    )
    assert await degraded.run_once() is None
    assert runs.get("skipped") == 1
