"""`mirror serve` as operators run it: events survive a SIGKILL, SIGTERM drains on both
servers, and two workers' metrics add up in one scrape."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.events_helpers import eventually
from tests.support.oci import push_image
from tests.support.processes import free_port, wait_until
from tests.support.scrape import sample, samples
from tests.support.served import serve_mirror
from tests.support.webhook import WebhookReceiver

pytestmark = [pytest.mark.slow]

SERVERS = ["granian", "uvicorn"]


def processes_with(argument: str) -> list[int]:
    """The live processes whose command line has `argument`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if argument.encode() in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def notifications(url: str) -> dict[str, object]:
    return {"endpoints": [{"name": "sink", "url": url, "threshold": 1, "backoff": "200ms"}]}


@pytest.mark.anyio
async def test_events_queued_while_the_sink_is_down_survive_a_sigkill(tmp_path: Path) -> None:
    sink = WebhookReceiver()
    await sink.start()
    await sink.stop()  # down: its port refuses connections
    port = free_port()
    options: dict[str, Any] = {
        "server": "granian",
        "extra": {"notifications": notifications(sink.url)},
    }
    expected: set[tuple[str, str]] = set()
    with serve_mirror(tmp_path, port, **options) as first:
        async with httpx.AsyncClient(base_url=first.url, timeout=30) as client:
            for n in range(3):
                _, digest = await push_image(client, f"team/app{n}", "v1", seed=n, layers=2)
                expected.add((f"team/app{n}", digest))
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(10)
        # Its worker goes too (SIGTERM from the kernel): no orphan serves on the port.
        config = str(tmp_path / "mirror-config.yml")
        wait_until(lambda: not processes_with(config), 15, what="the killed server's worker")
    await sink.start()
    try:
        with serve_mirror(tmp_path, port, **options):
            # 3 images: config, 2 layers and the manifest each.
            await eventually(lambda: len({e["id"] for e in sink.events()}) >= 12, 60, "12 events")
    finally:
        await sink.stop()
    events = sink.events()
    by_id: dict[str, set[tuple[str, str]]] = {}
    for event in events:
        target = (event["target"]["repository"], event["target"]["digest"])
        by_id.setdefault(event["id"], set()).add(target)
    # Every push arrived; a repeat has its first delivery's id, so it can be dropped.
    assert len(by_id) == 12
    assert all(len(targets) == 1 for targets in by_id.values())
    pushed = {target for targets in by_id.values() for target in targets}
    assert expected <= pushed
    assert {event["action"] for event in events} == {"push"}


def slow_patch(url: str, seconds: float, result: dict[str, object]) -> None:
    """PATCH an upload whose body takes `seconds` to send; records status or error."""

    def body() -> Iterator[bytes]:
        for _ in range(int(seconds * 10)):
            yield b"x" * 100
            time.sleep(0.1)

    try:
        with httpx.Client(timeout=60, trust_env=False) as client:
            start = client.post(f"{url}/v2/team/slow/blobs/uploads/")
            result["status"] = client.patch(
                url + start.headers["location"], content=body()
            ).status_code
    except httpx.HTTPError as exc:
        result["error"] = type(exc).__name__


@pytest.mark.parametrize("server", SERVERS)
def test_sigterm_lets_a_running_request_finish(server: str, tmp_path: Path) -> None:
    port = free_port()
    with serve_mirror(tmp_path, port, server=server, http={"draintimeout": "20s"}) as served:
        result: dict[str, object] = {}
        worker = threading.Thread(target=slow_patch, args=(served.url, 2.0, result))
        worker.start()
        wait_until(lambda: "PATCH" in served.log() or "POST" in served.log(), 10, what="upload")
        time.sleep(0.5)
        served.proc.send_signal(signal.SIGTERM)
        worker.join(30)
        assert served.proc.wait(30) == 0, served.log()
    assert result == {"status": 202}, served.log()
    assert "stop signal: draining" in served.log()


@pytest.mark.parametrize("server", SERVERS)
def test_sigterm_cuts_what_outlives_the_drain_timeout(server: str, tmp_path: Path) -> None:
    port = free_port()
    with serve_mirror(tmp_path, port, server=server, http={"draintimeout": "1s"}) as served:
        result: dict[str, object] = {}
        worker = threading.Thread(target=slow_patch, args=(served.url, 15.0, result))
        worker.start()
        wait_until(lambda: "POST" in served.log(), 10, what="upload")
        time.sleep(0.5)
        started = time.monotonic()
        served.proc.send_signal(signal.SIGTERM)
        assert served.proc.wait(20) == 0, served.log()
        stopped = time.monotonic() - started
        worker.join(30)
    assert "status" not in result or result["status"] != 202, result
    assert stopped < 15, served.log()  # not the request's 15 s


@pytest.mark.parametrize("server", SERVERS)
def test_two_workers_add_up_in_one_scrape(server: str, tmp_path: Path) -> None:
    port, debug_port = free_port(), free_port()
    debug = {"addr": f"127.0.0.1:{debug_port}", "prometheus": {"enabled": True, "path": "/m"}}
    with serve_mirror(tmp_path, port, server=server, workers=2, http={"debug": debug}) as served:
        sent = 0
        before = base_requests(served.url)  # the readiness probe's
        directory = tmp_path / "mirror-root" / "_mirror" / "prometheus" / str(served.proc.pid)
        deadline = time.monotonic() + 60

        def counter_pids() -> set[str]:
            names = os.listdir(directory) if directory.exists() else []
            return {name.split("_")[-1] for name in names if name.startswith("counter_")}

        # New connections until both workers have answered some.
        while len(counter_pids()) < 2 and time.monotonic() < deadline:
            for _ in range(10):
                with httpx.Client(trust_env=False, timeout=10) as client:
                    assert client.get(f"{served.url}/v2/").status_code == 200
                sent += 1
        assert len(counter_pids()) == 2
        # Whichever worker answers a scrape, it counts every worker's requests.
        totals = [base_requests(served.url) for _ in range(6)]
        assert totals == [before + sent] * len(totals), Counter(totals)
        # One debug listener for the server, with the same figures.
        debug_url = f"http://127.0.0.1:{debug_port}"
        assert base_requests(debug_url, "/m") == before + sent
        with httpx.Client(trust_env=False, timeout=10) as client:
            health = client.get(f"{debug_url}/debug/health")
        assert (health.status_code, health.json()) == (200, {})
    assert served.log().count("debug listener on") == 1, served.log()


def base_requests(url: str, path: str = "/metrics") -> float:
    with httpx.Client(trust_env=False, timeout=10) as client:
        text = client.get(f"{url}{path}").text
    assert not [labels for labels, _ in samples(text, "mirror_fills_active") if "pid" in labels]
    found = sample(text, "mirror_http_requests_total", route="base", method="GET", status="200")
    return found or 0.0
