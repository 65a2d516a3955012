"""The server runner: granian and uvicorn, IPv4/IPv6/dual-stack, TLS, workers, logging.

Each test starts a real server in a subprocess serving `create_test_app` below, and talks
to it over loopback with httpx.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from mirror.config import ConfigError, parse_config
from mirror.server import ListenError, bind_address, serve

REPO = Path(__file__).resolve().parent.parent
TEST_APP = "tests.test_server:create_test_app"
MARKERS_ENV = "MIRROR_TEST_MARKERS"
SERVERS = ["granian", "uvicorn"]
SERVE_SCRIPT = (
    "import sys\n"
    "from mirror.config import load_config\n"
    "from mirror.server import serve\n"
    "serve(load_config(sys.argv[1]), sys.argv[1], app_target=sys.argv[2])\n"
)


def create_test_app() -> ASGIApp:
    """A tiny ASGI app factory: says which process built it, and leaves a marker file."""
    pid = os.getpid()
    logging.getLogger("mirror.testapp").info("test app built in %d", pid)
    markers = os.environ.get(MARKERS_ENV)
    if markers:
        Path(markers, str(pid)).touch()
    body = json.dumps({"pid": pid, "config": os.environ.get("MIRROR_CONFIG")}).encode()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


def create_failing_app() -> ASGIApp:
    """An app whose lifespan startup fails, as when the real app cannot open its store."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "lifespan"
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "store unavailable"})

    return app


@dataclass
class Running:
    process: subprocess.Popen[bytes]
    log: Path
    markers: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def get(self, url: str, *, verify: ssl.SSLContext | bool = False) -> httpx.Response:
        """GET `url`, retrying until the server answers (bounded); fails if it exits."""
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                pytest.fail(f"server exited with {self.process.returncode}:\n{self.output()}")
            try:
                return httpx.get(url, timeout=5, verify=verify)
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    pytest.fail(f"server did not answer {url}:\n{self.output()}")
                time.sleep(0.1)

    def wait_for_output(self, text: str, timeout: float = 10) -> bool:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("REGISTRY_") and key != "MIRROR_CONFIG"
    }
    # The project may not be importable from anywhere else; the workers import from here.
    env["PYTHONPATH"] = str(REPO)
    env.update(extra)
    return env


@contextmanager
def running(command: list[str], tmp_path: Path) -> Iterator[Running]:
    """Run `command` (from the repository root) in its own session; stop it on exit."""
    markers = tmp_path / "markers"
    markers.mkdir(exist_ok=True)
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            cwd=REPO,
            env=clean_env(**{MARKERS_ENV: str(markers)}),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield Running(process, log, markers)
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    # Workers left behind by a crashed server would hold the port for later tests.
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@contextmanager
def serving(tmp_path: Path, config: str, app: str = TEST_APP) -> Iterator[Running]:
    path = tmp_path / "config.yml"
    path.write_text(config, encoding="utf-8")
    with running([sys.executable, "-c", SERVE_SCRIPT, str(path), app], tmp_path) as server:
        yield server


def free_port(family: socket.AddressFamily = socket.AF_INET) -> int:
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.bind(("::", 0))
        else:
            sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def config_text(server: str, addr: str, *, extra_http: str = "", log: str = "") -> str:
    return (
        "storage: inmemory\n"
        f"http:\n  addr: '{addr}'\n  server: {server}\n{extra_http}"
        f"log:\n  level: info\n{log}"
    )


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-nodes", "-newkey", "ec",
            "-pkeyopt", "ec_paramgen_curve:prime256v1", "-days", "2",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return cert, key


@pytest.mark.parametrize("server", SERVERS)
def test_serves_http_with_access_log(server: str, tmp_path: Path) -> None:
    port = free_port()
    with serving(tmp_path, config_text(server, f"127.0.0.1:{port}")) as running_server:
        response = running_server.get(f"http://127.0.0.1:{port}/hello")
        assert response.status_code == 200
        assert response.json()["config"] == str(tmp_path / "config.yml")
        assert running_server.wait_for_output("test app built in")
        assert running_server.wait_for_output("GET /hello")
    # SIGTERM is a clean shutdown.
    assert running_server.process.returncode == 0, running_server.output()


@pytest.mark.parametrize("server", SERVERS)
def test_serves_ipv6_without_access_log(server: str, tmp_path: Path) -> None:
    port = free_port(socket.AF_INET6)
    text = config_text(server, f"[::1]:{port}", log="  accesslog:\n    disabled: true\n")
    with serving(tmp_path, text) as running_server:
        response = running_server.get(f"http://[::1]:{port}/quiet")
        assert response.status_code == 200
        assert running_server.wait_for_output("test app built in")
        time.sleep(0.5)
        assert "/quiet" not in running_server.output()


@pytest.mark.parametrize("server", SERVERS)
def test_port_only_addr_takes_ipv4_and_ipv6(server: str, tmp_path: Path) -> None:
    port = free_port(socket.AF_INET6)
    with serving(tmp_path, config_text(server, f":{port}")) as running_server:
        assert running_server.get(f"http://127.0.0.1:{port}/").status_code == 200
        assert running_server.get(f"http://[::1]:{port}/").status_code == 200


@pytest.mark.parametrize("server", SERVERS)
def test_serves_https(server: str, tmp_path: Path, certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    port = free_port()
    tls = f"  tls:\n    certificate: {cert}\n    key: {key}\n"
    text = config_text(server, f"127.0.0.1:{port}", extra_http=tls).replace(
        "level: info", "level: error"
    )
    trust = ssl.create_default_context(cafile=str(cert))
    with serving(tmp_path, text) as running_server:
        response = running_server.get(f"https://127.0.0.1:{port}/secure", verify=trust)
        assert response.status_code == 200
        assert response.url.scheme == "https"
        # log.level error keeps the app's info line out.
        time.sleep(0.5)
        assert "test app built in" not in running_server.output()


@pytest.mark.parametrize("server", SERVERS)
def test_two_workers_are_two_processes(server: str, tmp_path: Path) -> None:
    port = free_port()
    text = config_text(server, f"127.0.0.1:{port}", extra_http="  workers: 2\n")
    with serving(tmp_path, text) as running_server:
        assert running_server.get(f"http://127.0.0.1:{port}/").status_code == 200
        deadline = time.monotonic() + 30
        while len(list(running_server.markers.iterdir())) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        pids = {int(marker.name) for marker in running_server.markers.iterdir()}
        assert len(pids) == 2, running_server.output()
        assert running_server.process.pid not in pids


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("server", SERVERS)
def test_a_killed_worker_is_replaced(server: str, tmp_path: Path) -> None:
    """A worker killed from outside (the OOM killer) does not take the server down."""
    port = free_port()
    text = config_text(server, f"127.0.0.1:{port}", extra_http="  workers: 2\n")
    with serving(tmp_path, text) as running_server:
        url = f"http://127.0.0.1:{port}/"
        assert running_server.get(url).status_code == 200

        def workers() -> set[int]:
            return {int(marker.name) for marker in running_server.markers.iterdir()}

        deadline = time.monotonic() + 30
        while len(workers()) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        first = workers()
        assert len(first) == 2, running_server.output()
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while len(workers()) < 3 and time.monotonic() < deadline:
            assert running_server.process.poll() is None, running_server.output()
            time.sleep(0.1)
        replacement = workers() - first
        assert len(replacement) == 1, running_server.output()
        assert alive(replacement.pop()) and not alive(victim)
        for _ in range(10):
            assert running_server.get(url).status_code == 200
        assert running_server.process.poll() is None, running_server.output()


@pytest.mark.parametrize("server", SERVERS)
def test_address_in_use_is_a_listen_error(server: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = parse_config(config_text(server, f"127.0.0.1:{port}"), {})
        with pytest.raises(ListenError, match=rf"^cannot listen on 127\.0\.0\.1:{port}: "):
            serve(config, None, app_target=TEST_APP)


@pytest.mark.parametrize("server", SERVERS)
def test_failed_app_startup_stops_the_server(server: str, tmp_path: Path) -> None:
    text = config_text(server, f"127.0.0.1:{free_port()}")
    with serving(tmp_path, text, app="tests.test_server:create_failing_app") as running_server:
        try:
            running_server.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail(f"server kept running:\n{running_server.output()}")
        assert running_server.process.returncode != 0, running_server.output()


def test_bind_address() -> None:
    assert bind_address("") in ("::", "0.0.0.0")
    assert bind_address("127.0.0.1") == "127.0.0.1"
    assert bind_address("::1") == "::1"
    assert bind_address("localhost") in ("127.0.0.1", "::1")
    with pytest.raises(ConfigError, match=r"^http\.addr: cannot resolve 'no-such-host\.invalid'"):
        bind_address("no-such-host.invalid")
