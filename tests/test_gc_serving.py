"""`storage.maintenance.gc`: the collection runs inside `mirror serve`, on its schedule,
with the store's access log; deleted content goes, content in use stays."""

from __future__ import annotations

import asyncio
import json
import random
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
from tests.support.oci import (
    digest_of,
    manifest_bytes,
    push_blob,
    push_image,
    push_manifest,
    random_bytes,
)

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
    gc = "{enabled: true, interval: 0.3s, delay: 1.5s}"
    app = create_app(parse_config(config(tmp_path, gc), {}), metrics)
    async with lifespan(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
            kept_raw, kept = await push_image(client, "team/kept", "v1", seed=1)
            gone_raw, gone = await push_image(client, "team/gone", "v1", seed=2)
            assert (await client.delete(f"/v2/team/gone/manifests/{gone}")).status_code == 202
            gone_layers = {d["digest"].split(":")[1] for d in json.loads(gone_raw)["layers"]}
            for _ in range(300):
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


POOL = [random_bytes(4096 + i, 7000 + i) for i in range(10)]
REPOS = ("r/a", "r/b", "r/c")
PUSHES = 20
Accepted = dict[tuple[str, str], tuple[bytes, list[bytes]]]


async def provide(client: httpx.AsyncClient, rng: random.Random, name: str, data: bytes) -> None:
    """A layer for a push: there already (a client's HEAD), mounted from another
    repository that has it, or uploaded."""
    choice = rng.random()
    if choice < 0.3:
        r = await client.head(f"/v2/{name}/blobs/{digest_of(data)}")
        if r.status_code == 200:
            return
    if choice < 0.65:
        source = rng.choice([r for r in REPOS if r != name])
        r = await client.post(f"/v2/{name}/blobs/uploads/?mount={digest_of(data)}&from={source}")
        if r.status_code == 201:
            return
    await push_blob(client, name, data)


async def pusher(client: httpx.AsyncClient, rng: random.Random, who: int, into: Accepted) -> None:
    for n in range(PUSHES):
        name = rng.choice(REPOS)
        layers = rng.sample(POOL, 2)
        config_blob = f'{{"who": {who}, "n": {n}}}'.encode()
        raw = manifest_bytes(config_blob, layers)
        for _ in range(10):
            for blob in (config_blob, *layers):
                await provide(client, rng, name, blob)
            r = await push_manifest(client, name, f"t{who}-{n}", raw)
            if r.status_code == 201:
                into[(name, f"t{who}-{n}")] = (raw, [config_blob, *layers])
                break
            # What a client is told when a layer went meanwhile; it pushes it again.
            assert r.status_code == 400 and "MANIFEST_BLOB_UNKNOWN" in r.text, r.text
        await asyncio.sleep(0.01)


async def deleter(
    client: httpx.AsyncClient, rng: random.Random, accepted: Accepted, stop: asyncio.Event
) -> int:
    deleted = 0
    while not stop.is_set():
        await asyncio.sleep(0.03)
        if len(accepted) > 1:
            key = rng.choice(sorted(accepted))
            raw, _ = accepted.pop(key)
            r = await client.delete(f"/v2/{key[0]}/manifests/{digest_of(raw)}")
            assert r.status_code == 202, r.text
            deleted += 1
    return deleted


async def test_pushes_mounts_and_deletes_over_http_while_the_online_collection_runs(
    tmp_path: Path,
) -> None:
    """The race test through the app: every accepted push pulls byte-identical after."""
    gc = "{enabled: true, interval: 0.05s, delay: 0.3s}"
    metrics = MetricsRegistry()
    app = create_app(parse_config(config(tmp_path, gc), {}), metrics)
    rng = random.Random(12)
    accepted: Accepted = {}
    async with lifespan(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
            stop = asyncio.Event()
            deleting = asyncio.create_task(deleter(client, rng, accepted, stop))
            pushes = (pusher(client, random.Random(i), i, accepted) for i in range(3))
            await asyncio.wait_for(asyncio.gather(*pushes), 120)
            stop.set()
            deleted = await deleting
            await asyncio.sleep(0.5)  # a few more collections with nothing going on
            for (name, tag), (raw, blobs) in accepted.items():
                r = await client.get(f"/v2/{name}/manifests/{tag}")
                assert r.status_code == 200 and r.content == raw
                for blob in blobs:
                    r = await client.get(f"/v2/{name}/blobs/{digest_of(blob)}")
                    assert r.status_code == 200 and r.content == blob, (name, tag)
    runs = metrics.counter("mirror_gc_runs_total", "", ("outcome",))
    assert runs.get("completed") >= 3
    assert deleted >= 10 and len(accepted) + deleted >= 30
    assert metrics.counter("mirror_gc_freed_bytes_total", "").get() > 0


async def test_workers_share_one_schedule() -> None:
    driver = create_driver("inmemory", {})
    shared = MemoryMetadataStore()
    log = MetadataAccessLog(shared)
    coordinator = LocalCoordinator()
    workers = [
        OnlineCollector(
            driver,
            coordinator,
            log,
            delay=60.0,
            schedule=shared,
            interval=3600.0,
            metrics=MetricsRegistry(),
        )
        for _ in range(2)
    ]
    assert await workers[0].run_once() is not None
    assert await workers[1].run_once() is None  # the first one collected moments ago
