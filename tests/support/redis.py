"""Helpers for tests that use the real Redis at 127.0.0.1:6379.

`redis_client` skips a test cleanly when Redis is not there, or fails it when the CI
environment variable is set (CI must not silently skip). `TcpProxy` stands between a
client and Redis so that a test can make Redis vanish (closing live connections, as a
crash would), hang (accepting connections but never answering), and come back on the
same port.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import uuid
from collections.abc import Iterator

import pytest
import redis.asyncio as aioredis

from mirror.coordination.redisconn import redis_available, redis_from_config
from tests.support.binaries import require_binary
from tests.support.processes import wait_until

REDIS_HOST = "127.0.0.1"
REDIS_PORT = 6379
REDIS_ADDR = f"{REDIS_HOST}:{REDIS_PORT}"


async def redis_client(addr: str = REDIS_ADDR, *, socket_timeout: float = 1.0) -> aioredis.Redis:
    """A client of the test Redis; skips (or, under CI, fails) when it is unreachable."""
    client = redis_from_config(addr, None, 0, socket_timeout=socket_timeout)
    if not await redis_available(client):
        await client.aclose()
        reason = f"Redis is not reachable at {addr}"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI is set, so this is a failure)")
        pytest.skip(reason)
    return client


def unique_prefix() -> str:
    """A key prefix no other test (or engineer sharing this Redis) uses."""
    return f"test-{uuid.uuid4().hex}:"


async def delete_prefix(client: aioredis.Redis, prefix: str) -> None:
    """Delete every key under `prefix`."""
    pattern = "".join("\\" + c if c in "*?[]\\" else c for c in prefix) + "*"
    keys = [key async for key in client.scan_iter(match=pattern, count=500)]
    for start in range(0, len(keys), 500):
        await client.delete(*keys[start : start + 500])


def closed_port() -> int:
    """A loopback port with nothing listening on it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class TcpProxy:
    """A loopback TCP forwarder to Redis that can be stopped, hung and restarted."""

    def __init__(self, target_port: int = REDIS_PORT, *, hang: bool = False) -> None:
        self.target_port = target_port
        self.hang = hang
        self.port = 0
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        """Listen (on the same port as before, after a stop) and return the port."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        """Stop listening and cut every open connection."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        ends = [writer]
        self._writers.add(writer)
        try:
            if self.hang:
                await reader.read()  # never answer; wait for the client to give up
                return
            up_reader, up_writer = await asyncio.open_connection(REDIS_HOST, self.target_port)
            ends.append(up_writer)
            self._writers.add(up_writer)
            await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer))
        except OSError:
            pass
        finally:
            for end in ends:
                end.transport.abort()
                self._writers.discard(end)
            self._tasks.discard(task)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.transport.abort()


@contextlib.contextmanager
def private_redis(port: int) -> Iterator[subprocess.Popen[bytes]]:
    """A redis-server of the test's own on 127.0.0.1:`port` (no persistence), so that a
    test may kill it without touching the shared one; stopped on exit if still running."""
    binary = require_binary("redis-server")
    args = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen([binary, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: _pings(port), 10, what=f"redis-server on port {port}")
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def _pings(port: int) -> bool:
    try:
        with socket.create_connection((REDIS_HOST, port), timeout=1.0) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False
