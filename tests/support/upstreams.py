"""An in-process upstream registry for pull-through tests.

The upstream is `mirror`'s own standalone registry on the in-memory driver, reached through
`httpx.ASGITransport`, wrapped by `FaultyTransport`, which counts requests and injects
faults (the one place tests mock: the transport seam).
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import httpx
from starlette.types import ASGIApp

from mirror.cache.fills.manager import FillManager
from mirror.cache.pullthrough.resolver import MirrorResolver
from mirror.cache.pullthrough.state import PullThroughState
from mirror.coordination.leases import Coordinator, LocalCoordinator
from mirror.coordination.metadata import MemoryMetadataStore, MetadataStore
from mirror.metrics import MetricsRegistry
from mirror.proxy.app import build_app, standalone_app
from mirror.registryhttp.client import DistributionClient
from mirror.store.drivers import create_driver
from mirror.store.store import Store
from mirror.upstream.breaker import CircuitBreaker
from mirror.upstream.gateway import UpstreamGateway
from mirror.upstream.routing import RoutingTable, UpstreamRoute

Fault = Callable[[httpx.Request], httpx.Response | None]


class _SlowStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, delay: float, chunk: int) -> None:
        self.inner, self.delay, self.chunk = inner, delay, chunk

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for data in self.inner:
            for i in range(0, len(data), self.chunk):
                await asyncio.sleep(self.delay)
                yield data[i : i + self.chunk]

    async def aclose(self) -> None:
        await self.inner.aclose()


class _BrokenStream(httpx.AsyncByteStream):
    """Delivers `keep` bytes, then fails like a dropped connection or, with `hang`,
    stops sending (a stuck upstream)."""

    def __init__(self, inner: httpx.AsyncByteStream, keep: int, *, hang: bool = False) -> None:
        self.inner, self.keep, self.hang = inner, keep, hang

    async def __aiter__(self) -> AsyncIterator[bytes]:
        sent = 0
        async for data in self.inner:
            if sent + len(data) >= self.keep:
                yield data[: self.keep - sent]
                if self.hang:
                    await asyncio.sleep(3600)
                raise httpx.ReadError("connection reset by peer (injected)")
            sent += len(data)
            yield data

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class FaultyTransport(httpx.AsyncBaseTransport):
    inner: httpx.AsyncBaseTransport
    log: list[tuple[str, str]] = field(default_factory=list)
    fault: Fault | None = None
    down: bool = False
    slow: tuple[float, int] | None = None  # (delay per piece, piece size) for blob bodies
    cut_blobs_at: int | None = None
    stall_blobs_at: int | None = None
    corrupt_blobs: bool = False

    def count(self, method: str, fragment: str = "") -> int:
        return sum(1 for m, p in self.log if m == method and fragment in p)

    def counts(self) -> collections.Counter[tuple[str, str]]:
        return collections.Counter(self.log)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.log.append((request.method, request.url.path))
        if self.down:
            raise httpx.ConnectError("connection refused (injected)", request=request)
        if self.fault is not None:
            injected = self.fault(request)
            if injected is not None:
                return injected
        response = await self.inner.handle_async_request(request)
        if "/blobs/" in request.url.path and request.method == "GET" and response.status_code < 300:
            stream: httpx.AsyncByteStream = response.stream  # type: ignore[assignment]
            if self.corrupt_blobs:
                body = b"".join([c async for c in stream])
                stream = httpx.ByteStream(bytes([body[0] ^ 0xFF]) + body[1:])
            if self.cut_blobs_at is not None:
                stream = _BrokenStream(stream, self.cut_blobs_at)
            if self.stall_blobs_at is not None:
                stream = _BrokenStream(stream, self.stall_blobs_at, hang=True)
            if self.slow is not None:
                stream = _SlowStream(stream, *self.slow)
            return httpx.Response(
                response.status_code, headers=response.headers, stream=stream, request=request
            )
        return response


@dataclass
class MirrorRig:
    """An upstream registry, a mirror in front of it, and clients for both."""

    upstream: httpx.AsyncClient
    transport: FaultyTransport
    mirror: httpx.AsyncClient
    store: Store
    gateway: UpstreamGateway
    metrics: MetricsRegistry
    metadata: MetadataStore
    fills: FillManager
    app: ASGIApp

    async def aclose(self) -> None:
        await self.fills.aclose()
        await self.mirror.aclose()
        await self.upstream.aclose()
        await self.gateway.client.aclose()


def make_rig(
    *,
    name: str = "docker.io",
    aliases: tuple[str, ...] = ("index.docker.io",),
    default: str | None = "docker.io",
    local: tuple[str, ...] = ("local",),
    freshness: float = 300.0,
    offline: bool = False,
    breaker: CircuitBreaker | None = None,
    driver: str = "inmemory",
    root: str | None = None,
    coordinator: Coordinator | None = None,
    metadata: MetadataStore | None = None,
    stall_timeout: float = 60.0,
) -> MirrorRig:
    upstream_app = standalone_app(create_driver("inmemory", {}), delete_enabled=True)
    transport = FaultyTransport(httpx.ASGITransport(app=upstream_app))
    metrics = MetricsRegistry()
    client = DistributionClient(
        "http://upstream.test", name=name, transport=transport, retries=0, backoff=0.0
    )
    route = UpstreamRoute(name, aliases)
    gateway = UpstreamGateway(
        route, client, freshness=freshness, offline=offline, breaker=breaker, metrics=metrics
    )
    params = {"rootdirectory": root} if driver == "filesystem" else {}
    store = Store(create_driver(driver, params), delete_enabled=True)
    metadata = metadata or MemoryMetadataStore()
    coordinator = coordinator or LocalCoordinator()
    fills = FillManager(
        store.blobs, coordinator, metadata, stall_timeout=stall_timeout, metrics=metrics
    )
    state = PullThroughState(fills, metadata, metrics=metrics)
    table = RoutingTable([route], default=default, local_prefixes=local)
    resolver = MirrorResolver(store, table, {name: gateway}, state)
    app = build_app(store, resolver, metrics=metrics)
    return MirrorRig(
        upstream=httpx.AsyncClient(
            transport=httpx.ASGITransport(app=upstream_app), base_url="http://upstream.test"
        ),
        transport=transport,
        mirror=httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://mirror.test"
        ),
        store=store,
        gateway=gateway,
        metrics=metrics,
        metadata=metadata,
        fills=fills,
        app=app,
    )
