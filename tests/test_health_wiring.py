"""Health through the configuration: each check kind passing and failing, the debug
listener (/debug/health and metrics), the probes on the main port, an upstream that is
down (reported, never critical), and the probes during a drain (a real SIGTERM)."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from mirror.config import parse_config
from mirror.metrics import MetricsRegistry
from mirror.proxy.app import create_app
from mirror.proxy.asgi import DistributionApp
from tests.support.lifespan import lifespan
from tests.support.processes import free_port
from tests.support.scrape import sample
from tests.support.webhook import WebhookReceiver

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def started(
    root: Path, **sections: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, DistributionApp]]:
    config = {"storage": {"filesystem": {"rootdirectory": str(root)}}, **sections}
    transports: dict[str, httpx.AsyncBaseTransport] = {}
    if "proxy" in sections:

        def down(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("connection refused", request=request)

        transports["upstream.test"] = httpx.MockTransport(down)
    app = create_app(parse_config(json.dumps(config), {}), MetricsRegistry(), transports=transports)
    async with lifespan(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://r.test") as client:
            yield client, app


async def status_of(client: httpx.AsyncClient, path: str) -> tuple[int, str]:
    response = await client.get(path)
    return response.status_code, response.text


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_each_check_kind_passes_and_fails_on_the_debug_listener(tmp_path: Path) -> None:
    flag = tmp_path / "maintenance"
    debug_port = free_port()
    async with WebhookReceiver() as pinged:
        with socket.socket() as listening:
            listening.bind(("127.0.0.1", 0))
            listening.listen()
            tcp_port = listening.getsockname()[1]
            health = {
                "storagedriver": {"interval": "100ms", "threshold": 1},
                "file": [{"file": str(flag), "interval": "100ms"}],
                "http": [{"uri": pinged.url, "statuscode": 200, "interval": "100ms"}],
                "tcp": [{"addr": f"127.0.0.1:{tcp_port}", "interval": "100ms"}],
            }
            debug = {"addr": f"127.0.0.1:{debug_port}", "prometheus": {"enabled": True}}
            async with (
                started(tmp_path / "root", health=health, http={"debug": debug}) as (client, _),
                httpx.AsyncClient(base_url=f"http://127.0.0.1:{debug_port}") as dbg,
            ):

                async def debug_health() -> tuple[int, Any]:
                    try:
                        answer = await dbg.get("/debug/health")
                    except httpx.TransportError:
                        return 0, None
                    return answer.status_code, answer.json()

                await eventually_async(debug_health, (200, {}))
                # Ready once every critical check has passed once.
                await eventually_async(lambda: status_of(client, "/readyz"), (200, "ok\n"))
                flag.write_text("down for maintenance")
                pinged.status = 503
                listening.close()
                code, failing = await wait_for_failing(debug_health, 3)
                assert code == 503
                assert failing[str(flag)] == "file exists"
                assert failing[pinged.url] == (
                    f"{pinged.url}: downstream service returned unexpected status: 503"
                )
                assert failing[f"127.0.0.1:{tcp_port}"].startswith(
                    f"127.0.0.1:{tcp_port}: connection failed"
                )
                ready = await client.get("/readyz")
                assert ready.status_code == 503
                assert f"not ready: {flag}: file exists" in ready.text
                scraped = (await dbg.get("/metrics")).text
                assert (
                    sample(scraped, "mirror_health_check_passing", check=str(flag), critical="true")
                    == 0
                )
                assert (
                    sample(
                        scraped,
                        "mirror_health_check_passing",
                        check="storagedriver_filesystem",
                        critical="true",
                    )
                    == 1
                )
                assert (await dbg.get("/other")).status_code == 404
                flag.unlink()
                pinged.status = 200
                code, failing = await wait_for_failing(debug_health, 1)
                assert list(failing) == [f"127.0.0.1:{tcp_port}"]


async def eventually_async(probe: Any, wanted: Any, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while (found := await probe()) != wanted:
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"still {found!r}, wanted {wanted!r}")
        await asyncio.sleep(0.05)


async def wait_for_failing(probe: Any, count: int, timeout: float = 10.0) -> tuple[int, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        code, body = await probe()
        if isinstance(body, dict) and len(body) == count:
            return code, body
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"failing checks: {body!r}, wanted {count}")
        await asyncio.sleep(0.05)


async def test_an_unreachable_upstream_is_reported_but_never_makes_it_unready(
    tmp_path: Path,
) -> None:
    proxy = {
        "remoteurl": "http://upstream.test",
        "name": "upstream.test",
        "breaker": {"failures": 1, "reset": "1m"},
    }
    async with started(tmp_path / "root", proxy=proxy) as (client, _):
        await eventually_async(lambda: status_of(client, "/readyz"), (200, "ok\n"))
        assert (await client.get("/v2/library/alpine/manifests/3")).status_code == 503
        verbose = await client.get("/readyz?verbose")
        assert verbose.status_code == 200
        assert "[-]upstream_upstream.test failed: circuit open" in verbose.text
        assert "(not critical)" in verbose.text


async def test_probes_during_a_drain(tmp_path: Path) -> None:
    """A real SIGTERM in this process: the app's handler drains (the test runner's own
    SIGTERM handling is the default, which the app does not call for SIGTERM)."""
    async with started(tmp_path / "root", http={"draintimeout": "1s"}) as (client, _):
        await eventually_async(lambda: status_of(client, "/readyz"), (200, "ok\n"))
        previous = signal.getsignal(signal.SIGTERM)
        assert callable(previous)  # the app's, chained in front of the default
        hold = asyncio.Event()

        async def slow_body() -> AsyncIterator[bytes]:
            yield b"x"
            await hold.wait()
            yield b"y"

        start = await client.post("/v2/team/app/blobs/uploads/")
        running = asyncio.create_task(client.patch(start.headers["location"], content=slow_body()))
        await asyncio.sleep(0.2)
        signal.raise_signal(signal.SIGTERM)
        await eventually_async(
            lambda: status_of(client, "/readyz"), (503, "not ready: draining: shutting down\n")
        )
        assert (await client.get("/livez")).status_code == 200
        # The request that outlives the drain timeout is cut.
        with pytest.raises(BaseException):  # noqa: B017 - cancelled inside the transport
            await asyncio.wait_for(running, 5)
        hold.set()
    assert signal.getsignal(signal.SIGTERM) is not previous  # put back at shutdown
