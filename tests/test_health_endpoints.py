"""/debug/health as registry:2 answers it, and /livez and /readyz through a drain."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from mirror.health.checks import FileCheck, StorageCheck
from mirror.health.endpoints import Probes, debug_health_app
from mirror.health.registry import HealthRegistry
from mirror.store.drivers import create_driver
from tests.support.asgiserver import serving

pytestmark = pytest.mark.anyio


@pytest.fixture
async def registry(tmp_path: Path) -> AsyncIterator[HealthRegistry]:
    registry = HealthRegistry()
    driver = create_driver("filesystem", {"rootdirectory": str(tmp_path / "root")})
    registry.add("storagedriver_filesystem", StorageCheck(driver), threshold=3)
    registry.add(str(tmp_path / "down"), FileCheck(str(tmp_path / "down")))
    yield registry
    await registry.aclose()


def client(app: object) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://mirror.test")


async def test_debug_health_answers_as_the_reference(
    registry: HealthRegistry, tmp_path: Path
) -> None:
    # On a real listener, as the debug server will run it.
    async with serving(debug_health_app(registry)) as base, httpx.AsyncClient() as http:
        await registry.check_now()
        healthy = await http.get(f"{base}/debug/health")
        assert (healthy.status_code, healthy.json()) == (200, {})
        assert healthy.headers["content-type"] == "application/json"
        (tmp_path / "down").write_text("")
        await registry.check_now()
        sick = await http.get(f"{base}/debug/health")
        assert (sick.status_code, sick.json()) == (503, {str(tmp_path / "down"): "file exists"})
        assert (await http.post(f"{base}/debug/health")).status_code == 404
        assert (await http.get(f"{base}/debug/other")).status_code == 404


async def test_debug_health_lists_every_failing_check(tmp_path: Path) -> None:
    registry = HealthRegistry()
    for name in ("a", "b"):
        registry.add(name, FileCheck(str(tmp_path)))  # the directory exists: failing
    registry.state("upstream docker.io").update("refused")  # not critical
    await registry.check_now()
    async with client(debug_health_app(registry)) as http:
        answer = await http.get("/debug/health")
    assert (answer.status_code, answer.json()) == (503, {"a": "file exists", "b": "file exists"})


async def test_ready_once_storage_passed_until_the_drain(registry: HealthRegistry) -> None:
    probes = Probes(registry)
    async with client(probes) as http:
        before = await http.get("/readyz")
        assert before.status_code == 503  # nothing checked yet
        assert "storagedriver_filesystem: not checked yet" in before.text
        await registry.check_now()
        ready = await http.get("/readyz")
        assert (ready.status_code, ready.text) == (200, "ok\n")
        assert ready.headers["cache-control"] == "no-cache"
        probes.drain()
        draining = await http.get("/readyz")
        assert (draining.status_code, draining.text) == (
            503,
            "not ready: draining: shutting down\n",
        )
        live = await http.get("/livez")
        assert (live.status_code, live.text) == (200, "ok\n")  # draining is alive
        head = await http.head("/readyz")
        assert (head.status_code, head.content) == (503, b"")
        assert (await http.post("/livez")).status_code == 404
        assert (await http.get("/healthz")).status_code == 404


async def test_a_failing_critical_check_makes_it_unready_but_alive(
    registry: HealthRegistry, tmp_path: Path
) -> None:
    (tmp_path / "down").write_text("")
    await registry.check_now()
    async with client(Probes(registry)) as http:
        unready = await http.get("/readyz")
        assert unready.status_code == 503
        assert f"not ready: {tmp_path / 'down'}: file exists" in unready.text
        assert (await http.get("/livez")).status_code == 200


async def test_an_unreachable_upstream_keeps_it_ready_and_is_reported(
    registry: HealthRegistry, tmp_path: Path
) -> None:
    upstream = registry.state("upstream docker.io")
    upstream.update("registry-1.docker.io: connection refused")
    await registry.check_now()
    async with client(Probes(registry)) as http:
        assert (await http.get("/readyz")).status_code == 200
        verbose = await http.get("/readyz?verbose")
        assert verbose.status_code == 200
        assert verbose.text.splitlines() == [
            "[+]draining ok",
            "[+]storagedriver_filesystem ok",
            f"[+]{tmp_path / 'down'} ok",
            "[-]upstream docker.io failed: registry-1.docker.io: connection refused (not critical)",
            "readyz check passed",
        ]
        assert (await http.get("/livez?verbose")).text.endswith("livez check passed\n")
