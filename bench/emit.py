"""How long `Dispatcher.emit` keeps a request waiting: ``python -m bench.emit``.

Not part of ``python -m bench``: it measures one function in-process. Each setup emits
`COUNT` blob-push events one after another (as sequential requests would) and reports
the median, the 99th percentile and the maximum of one emit, with no endpoint, with a
live endpoint, with a dead one (nothing listens on its port) and with a dead one beside
two live ones; through Redis too when one answers at 127.0.0.1:6379.
"""

from __future__ import annotations

import asyncio
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import redis.asyncio as aioredis

from mirror.coordination.redisconn import redis_available, redis_from_config
from mirror.digests import Digest
from mirror.events.builder import EventBuilder, RequestContext
from mirror.events.dispatcher import Dispatcher
from mirror.events.envelope import RequestRecord, SourceRecord
from mirror.events.setup import EndpointSettings, build_dispatcher

COUNT = 2000
BUILDER = EventBuilder(SourceRecord("bench:5000", "bench"))
CTX = RequestContext(RequestRecord("r", "PUT", "127.0.0.1:1", "bench"), base_url="http://b")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def _live_receiver() -> tuple[asyncio.Server, str]:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/events"


async def _measure(hub: Dispatcher) -> list[float]:
    hub.start()
    times: list[float] = []
    for n in range(COUNT):
        event = BUILDER.blob_pushed(CTX, "bench/app", Digest.of(str(n).encode()), n)
        started = time.perf_counter()
        await hub.emit(event)
        times.append(time.perf_counter() - started)
    await hub.aclose()
    return times


def _row(name: str, times: list[float]) -> str:
    ordered = sorted(times)
    p99 = ordered[int(len(ordered) * 0.99)]
    return (
        f"{name:<34} median {statistics.median(ordered) * 1e6:7.0f} us"
        f"   p99 {p99 * 1e6:7.0f} us   max {ordered[-1] * 1e6:7.0f} us"
    )


async def main() -> None:
    server, live = await _live_receiver()
    dead = f"http://127.0.0.1:{_closed_port()}/events"
    client: aioredis.Redis | None = redis_from_config("127.0.0.1:6379", None, 0)
    if client is not None and not await redis_available(client):
        await client.aclose()
        client = None
    setups: list[tuple[str, Callable[[Path], Dispatcher]]] = [
        ("no endpoint", lambda d: build_dispatcher([], directory=d)),
        ("live endpoint (disk)", lambda d: _hub(d, [live])),
        ("dead endpoint (disk)", lambda d: _hub(d, [dead])),
        ("dead + 2 live endpoints (disk)", lambda d: _hub(d, [dead, live, live])),
    ]
    if client is not None:
        shared = client
        setups += [
            ("live endpoint (redis)", lambda d: _hub(d, [live], shared)),
            ("dead endpoint (redis)", lambda d: _hub(d, [dead], shared)),
        ]
    print(f"{COUNT} sequential emits per setup, Python {sys.version.split()[0]}")
    for name, make in setups:
        with tempfile.TemporaryDirectory() as directory:
            print(_row(name, await _measure(make(Path(directory)))), flush=True)
            if client is not None:
                await _clear(client)
    server.close()
    if client is not None:
        await client.aclose()


def _hub(directory: Path, urls: list[str], client: aioredis.Redis | None = None) -> Dispatcher:
    endpoints = [EndpointSettings(f"e{n}", url) for n, url in enumerate(urls)]
    return build_dispatcher(endpoints, directory=directory, redis=client, redis_prefix="bench:")


async def _clear(client: aioredis.Redis) -> None:
    deleting: list[Awaitable[int]] = []
    async for key in client.scan_iter(match="bench:*"):
        deleting.append(client.delete(key))
    await asyncio.gather(*deleting)


if __name__ == "__main__":
    asyncio.run(main())
