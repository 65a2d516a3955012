"""An in-process upstream registry and a mirror in front of it, for pull-through tests.

The upstream is `mirror`'s own standalone registry on the in-memory driver, reached through
`httpx.ASGITransport`, wrapped by `FaultyTransport`, which counts requests and injects
faults (the one place tests mock: the transport seam). The mirror is what `create_app`
builds from configuration text, with that transport handed to it for its upstream.
"""

from __future__ import annotations

import asyncio
import collections
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import httpx

from mirror.cache.fills.manager import FillManager
from mirror.cache.pullthrough.resolver import MirrorResolver
from mirror.cache.pullthrough.source import MirrorSource
from mirror.config import parse_config
from mirror.coordination.metadata import MetadataStore
from mirror.metrics import MetricsRegistry
from mirror.proxy.app import Tuning, create_app, standalone_app
from mirror.proxy.asgi import DistributionApp
from mirror.store.driver import StorageDriver
from mirror.store.drivers import create_driver
from mirror.store.store import Store
from mirror.upstream.api import Upstream, UpstreamDecorator
from mirror.upstream.offline import OfflineUpstream

T = TypeVar("T")
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
    app: DistributionApp
    metrics: MetricsRegistry

    @property
    def store(self) -> Store:
        return self.app.services.store

    @property
    def resolver(self) -> MirrorResolver:
        resolver = self.app.services.resolver
        assert isinstance(resolver, MirrorResolver)
        return resolver

    @property
    def source(self) -> MirrorSource:
        """The one upstream as the cache uses it (its `freshness` may be changed)."""
        (source,) = self.resolver.sources.values()
        return source

    @property
    def offline_switch(self) -> OfflineUpstream:
        return layer(self.source.upstream, OfflineUpstream)

    @property
    def fills(self) -> FillManager:
        return self.resolver.state.fills

    @property
    def metadata(self) -> MetadataStore:
        return self.resolver.state.metadata

    async def aclose(self) -> None:
        for hook in self.app.shutdown:
            await hook()
        await self.mirror.aclose()
        await self.upstream.aclose()


def layer(upstream: Upstream, kind: type[T]) -> T:
    """The decorator of type `kind` in `upstream`'s stack."""
    while not isinstance(upstream, kind):
        assert isinstance(upstream, UpstreamDecorator), f"no {kind.__name__} in the stack"
        upstream = upstream.inner
    return upstream


def rig_config(
    *,
    name: str,
    aliases: tuple[str, ...],
    default: str | None,
    local: tuple[str, ...],
    freshness: float,
    offline: bool,
    breaker: tuple[int, float],
    driver: str,
    root: str | None,
    redis: str | None,
    prefetch: bool = True,
    timeouts: dict[str, object] | None = None,
    redis_prefix: str | None = None,
) -> str:
    """Configuration text for a mirror of one upstream at http://upstream.test."""
    storage: dict[str, object] = (
        {"filesystem": {"rootdirectory": root}} if driver == "filesystem" else {"inmemory": None}
    )
    storage["delete"] = {"enabled": True}
    proxy = {
        "remoteurl": "http://upstream.test",
        "name": name,
        "aliases": list(aliases),
        "default": default or "",
        "local": list(local),
        "freshness": freshness,
        "offline": offline,
        "breaker": {"failures": breaker[0], "reset": breaker[1]},
        "prefetch": prefetch,
        "timeouts": timeouts or {},
    }
    config: dict[str, object] = {"version": "0.1", "storage": storage, "proxy": proxy}
    if redis is not None:
        prefix = {} if redis_prefix is None else {"prefix": redis_prefix}
        config["redis"] = {"addr": redis, "dialtimeout": 0.2, **prefix}
    return json.dumps(config)  # JSON is YAML


def make_rig(
    *,
    name: str = "docker.io",
    aliases: tuple[str, ...] = ("index.docker.io",),
    default: str | None = "docker.io",
    local: tuple[str, ...] = ("local",),
    freshness: float = 300.0,
    offline: bool = False,
    breaker: tuple[int, float] = (5, 30.0),
    driver: str = "inmemory",
    root: str | None = None,
    redis: str | None = None,
    redis_prefix: str | None = None,
    stall_timeout: float = 60.0,
    blob_min_rate: int | None = None,
    blob_rate_window: float | None = None,
    prefetch: bool = True,
    timeouts: dict[str, object] | None = None,
    storage_driver: StorageDriver | None = None,
) -> MirrorRig:
    """A mirror built by `create_app` from configuration, in front of an in-process
    upstream. Its start-up hooks (periodic upkeep) are not run; `aclose()` runs its
    shut-down hooks. `storage_driver` replaces the configured one (`driver`)."""
    upstream_app = standalone_app(create_driver("inmemory", {}), delete_enabled=True)
    transport = FaultyTransport(httpx.ASGITransport(app=upstream_app))
    metrics = MetricsRegistry()
    text = rig_config(
        name=name,
        aliases=aliases,
        default=default,
        local=local,
        freshness=freshness,
        offline=offline,
        breaker=breaker,
        driver=driver,
        root=root,
        redis=redis,
        prefetch=prefetch,
        timeouts={
            "stall": stall_timeout,
            **({} if blob_min_rate is None else {"blobminrate": blob_min_rate}),
            **({} if blob_rate_window is None else {"blobratewindow": blob_rate_window}),
            **(timeouts or {}),
        },
        redis_prefix=redis_prefix,
    )
    tuning = Tuning(upstream_retries=0, upstream_backoff=0.0)
    app = create_app(
        parse_config(text, {}),
        metrics,
        transports={name: transport},
        tuning=tuning,
        driver=storage_driver,
    )
    return MirrorRig(
        upstream=httpx.AsyncClient(
            transport=httpx.ASGITransport(app=upstream_app), base_url="http://upstream.test"
        ),
        transport=transport,
        mirror=httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://mirror.test"
        ),
        app=app,
        metrics=metrics,
    )
