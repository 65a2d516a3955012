"""One suite for every MetadataStore, then what only some of them do.

The shared suite runs against memory, disk, Redis, the fallback over a live Redis (which
must never fall back) and the fallback over a Redis at a closed port (which must answer
everything from its embedded store).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from mirror.coordination.failover import BackendUnavailable, Failover
from mirror.coordination.metadata import (
    DiskMetadataStore,
    FallbackMetadataStore,
    MemoryMetadataStore,
    MetadataStore,
)
from mirror.coordination.redis_metadata import RedisMetadataStore, glob_escape
from mirror.coordination.redisconn import (
    as_bytes,
    parse_addr,
    redis_available,
    redis_from_config,
    ttl_ms,
)
from mirror.metrics import MetricsRegistry
from tests.support.redis import (
    REDIS_ADDR,
    TcpProxy,
    closed_port,
    delete_prefix,
    redis_client,
    unique_prefix,
)

pytestmark = pytest.mark.anyio

ODD_KEYS = [
    "tag/library/alpine:3.20",
    "blob/sha256:abc@x",
    "star*key",
    "q?[x]\\y",
    "caret^and-dash",
    "unicode/é/ünï",
    "with space",
    "",
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def dead_redis_store() -> RedisMetadataStore:
    client = redis_from_config(f"127.0.0.1:{closed_port()}", None, 0)
    return RedisMetadataStore(client, prefix=unique_prefix())


@pytest.fixture(
    params=[
        "memory",
        "disk",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("fallback-redis", marks=pytest.mark.redis),
        "fallback-dead-redis",
    ]
)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MetadataStore]:
    kind: str = request.param
    if kind == "memory":
        memory = MemoryMetadataStore()
        yield memory
        await memory.aclose()
    elif kind == "disk":
        disk = DiskMetadataStore(tmp_path / "md")
        yield disk
        await disk.aclose()
    elif kind in ("redis", "fallback-redis"):
        client = await redis_client()
        prefix = unique_prefix()
        redis_store = RedisMetadataStore(client, prefix=prefix)
        try:
            if kind == "redis":
                yield redis_store
            else:
                metrics = MetricsRegistry()
                fallback = FallbackMetadataStore(
                    redis_store, MemoryMetadataStore(), metrics=metrics
                )
                yield fallback
                assert counted(metrics, "mirror_redis_fallbacks_total") == 0
                assert not fallback.failover.down
        finally:
            await delete_prefix(client, prefix)
            await client.aclose()
    else:
        metrics = MetricsRegistry()
        degraded = FallbackMetadataStore(
            dead_redis_store(), MemoryMetadataStore(), metrics=metrics, min_backoff=0.05
        )
        yield degraded
        assert degraded.failover.down
        assert counted(metrics, "mirror_redis_fallbacks_total") > 0
        await degraded.aclose()


def counted(metrics: MetricsRegistry, name: str) -> float:
    return metrics.counter(name, "", ("component",)).get("metadata")


def redis_up(metrics: MetricsRegistry) -> float:
    return metrics.gauge("mirror_redis_up", "", ("component",)).get("metadata")


async def collect(store: MetadataStore, prefix: str) -> dict[str, bytes]:
    return {key: value async for key, value in store.scan(prefix)}


# The shared suite.


async def test_missing_key_is_none(store: MetadataStore) -> None:
    assert await store.get("nothing/here") is None


async def test_set_get_overwrite_binary(store: MetadataStore) -> None:
    every_byte = bytes(range(256))
    await store.set("k", every_byte)
    assert await store.get("k") == every_byte
    await store.set("k", b"")
    assert await store.get("k") == b""
    await store.set("k", b"second")
    assert await store.get("k") == b"second"


async def test_arbitrary_keys(store: MetadataStore) -> None:
    for i, key in enumerate(ODD_KEYS):
        await store.set(key, str(i).encode())
    for i, key in enumerate(ODD_KEYS):
        assert await store.get(key) == str(i).encode()
    assert await collect(store, "") == {k: str(i).encode() for i, k in enumerate(ODD_KEYS)}


async def test_ttl_expiry(store: MetadataStore) -> None:
    await store.set("short/a", b"1", ttl=0.2)
    await store.set("short/b", b"2", ttl=30)
    await store.set("short/c", b"3")
    assert await store.get("short/a") == b"1"
    await asyncio.sleep(0.35)
    assert await store.get("short/a") is None
    assert await store.get_many(["short/a", "short/b", "short/c"]) == [None, b"2", b"3"]
    assert await collect(store, "short/") == {"short/b": b"2", "short/c": b"3"}


async def test_set_replaces_ttl(store: MetadataStore) -> None:
    await store.set("k", b"1", ttl=0.2)
    await store.set("k", b"2")
    await store.set("j", b"1")
    await store.set("j", b"2", ttl=0.2)
    await asyncio.sleep(0.35)
    assert await store.get("k") == b"2"
    assert await store.get("j") is None


async def test_non_positive_ttl_rejected(store: MetadataStore) -> None:
    for ttl in (0, -1.0):
        with pytest.raises(ValueError):
            await store.set("k", b"v", ttl=ttl)
    assert await store.get("k") is None


async def test_get_many(store: MetadataStore) -> None:
    assert await store.get_many([]) == []
    await store.set("a", b"A")
    await store.set("c", b"C")
    assert await store.get_many(["c", "b", "a", "c"]) == [b"C", None, b"A", b"C"]
    keys = [f"many/{i}" for i in range(1200)]
    for i, key in enumerate(keys[::2]):
        await store.set(key, str(i).encode())
    values = await store.get_many(keys)
    assert values[::2] == [str(i).encode() for i in range(600)]
    assert values[1::2] == [None] * 600


async def test_scan_by_prefix(store: MetadataStore) -> None:
    for key in ("a*/1", "a*/2", "ab/1", "a/1", "b/1", "a*"):
        await store.set(key, key.encode())
    assert await collect(store, "a*/") == {"a*/1": b"a*/1", "a*/2": b"a*/2"}
    assert set(await collect(store, "a*")) == {"a*/1", "a*/2", "a*"}
    assert set(await collect(store, "a")) == {"a*/1", "a*/2", "ab/1", "a/1", "a*"}
    assert await collect(store, "zzz") == {}


async def test_scan_many_entries(store: MetadataStore) -> None:
    for i in range(1500):
        await store.set(f"scan/{i:05d}", str(i).encode())
        await store.set(f"other/{i:05d}", b"x")
    found = await collect(store, "scan/")
    assert found == {f"scan/{i:05d}": str(i).encode() for i in range(1500)}


async def test_scan_closed_early(store: MetadataStore) -> None:
    for i in range(700):
        await store.set(f"s/{i}", b"v")
    entries = store.scan("s/")
    first = await anext(entries)
    assert first[1] == b"v"
    close = getattr(entries, "aclose", None)
    assert close is not None
    await close()
    assert len(await collect(store, "s/")) == 700


async def test_delete_is_idempotent(store: MetadataStore) -> None:
    await store.set("gone", b"1", ttl=10)
    await store.delete("gone")
    await store.delete("gone")
    await store.delete("never-was")
    assert await store.get("gone") is None
    assert await collect(store, "gone") == {}


async def test_concurrent_writes(store: MetadataStore) -> None:
    await asyncio.gather(*(store.set(f"c/{i}", str(i).encode()) for i in range(100)))
    values = await asyncio.gather(*(store.get(f"c/{i}") for i in range(100)))
    assert values == [str(i).encode() for i in range(100)]


# Memory and disk.


async def test_memory_sweeps_expired_entries() -> None:
    store = MemoryMetadataStore()
    for i in range(1500):
        await store.set(f"neg/{i}", b"x", ttl=0.05)
    await asyncio.sleep(0.1)
    for i in range(1500):
        await store.set(f"live/{i}", b"y")
    # Expired entries nobody read again are gone, not just hidden.
    assert len(store) < 2000
    assert len(await collect(store, "")) == 1500


_WRITER = """
import asyncio, sys
from mirror.coordination.metadata import DiskMetadataStore
async def main():
    store = DiskMetadataStore(sys.argv[1])
    seen = await store.get("from/parent")
    await store.set("from/child", b"child saw " + (seen or b"nothing"), ttl=60)
    await store.aclose()
asyncio.run(main())
"""


async def test_disk_store_is_shared_between_processes(tmp_path: Path) -> None:
    store = DiskMetadataStore(tmp_path / "md")
    await store.set("from/parent", b"hello")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _WRITER,
        str(tmp_path / "md"),
        stderr=asyncio.subprocess.PIPE,
        cwd=Path(__file__).parent.parent,
    )
    _, stderr = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, stderr.decode()
    assert await store.get("from/child") == b"child saw hello"
    await store.aclose()


# Redis specifics.


def test_parse_addr() -> None:
    assert parse_addr("localhost:6379") == ("localhost", 6379)
    assert parse_addr("redis.internal") == ("redis.internal", 6379)
    assert parse_addr("[::1]:6380") == ("::1", 6380)
    assert parse_addr("[::1]") == ("::1", 6379)
    assert parse_addr("::1") == ("::1", 6379)
    for bad in ("", ":6379", "host:port", "host:0", "host:70000", "[::1", "[::1]x"):
        with pytest.raises(ValueError):
            parse_addr(bad)


def test_small_helpers() -> None:
    assert ttl_ms(0.0001) == 1
    assert ttl_ms(1.5) == 1500
    assert glob_escape("a*b?[c]\\") == "a\\*b\\?\\[c\\]\\\\"
    assert as_bytes(None) is None
    assert as_bytes(b"x") == b"x"
    with pytest.raises(TypeError):
        as_bytes("x")


@pytest.mark.redis
async def test_redis_from_config_reaches_redis() -> None:
    await (await redis_client()).aclose()  # skips when there is no Redis
    for addr in (REDIS_ADDR, "[::1]:6379"):
        client = redis_from_config(addr, None, 0)
        assert await redis_available(client)
        await client.aclose()
    wrong = redis_from_config(REDIS_ADDR, "wrong-password", 0, username="nobody")
    assert not await redis_available(wrong)
    await wrong.aclose()


async def test_unreachable_redis_skips_or_fails_under_ci(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    addr = f"127.0.0.1:{closed_port()}"
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        await redis_client(addr)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception):
        await redis_client(addr)


async def test_dead_redis_fails_fast() -> None:
    client = redis_from_config(f"127.0.0.1:{closed_port()}", None, 0)
    started = time.monotonic()
    assert not await redis_available(client)
    assert time.monotonic() - started < 0.5
    await client.aclose()


async def test_hung_redis_times_out() -> None:
    proxy = TcpProxy(closed_port(), hang=True)
    port = await proxy.start()
    client = redis_from_config(f"127.0.0.1:{port}", None, 0, socket_timeout=0.2)
    started = time.monotonic()
    assert not await redis_available(client)
    # One attempt and one retry, each bounded by the read timeout.
    assert time.monotonic() - started < 1.0
    await client.aclose()
    await proxy.stop()


@pytest.mark.redis
async def test_redis_layout_and_ownership() -> None:
    raw = await redis_client()
    prefix = unique_prefix()
    store = RedisMetadataStore(f"redis://{REDIS_ADDR}/0", prefix=prefix)
    try:
        await store.set("tag/x", b"v", ttl=30)
        assert await raw.get(f"{prefix}md:tag/x") == b"v"
        assert 0 < await raw.pttl(f"{prefix}md:tag/x") <= 30000
    finally:
        await store.aclose()  # closes the client it made from the URL
        await delete_prefix(raw, prefix)
        await raw.aclose()
    decoding = aioredis.Redis(host="127.0.0.1", decode_responses=True)
    with pytest.raises(ValueError):
        RedisMetadataStore(decoding)
    await decoding.aclose()


# Fallback behaviour.


class CountingStore:
    """Counts the calls that reach a store."""

    def __init__(self, inner: MetadataStore) -> None:
        self.inner = inner
        self.calls = 0

    async def get(self, key: str) -> bytes | None:
        self.calls += 1
        return await self.inner.get(key)

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        self.calls += 1
        return await self.inner.get_many(keys)

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        self.calls += 1
        await self.inner.set(key, value, ttl)

    async def delete(self, key: str) -> None:
        self.calls += 1
        await self.inner.delete(key)

    async def scan(self, prefix: str) -> AsyncIterator[tuple[str, bytes]]:
        self.calls += 1
        async for entry in self.inner.scan(prefix):
            yield entry

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_fallback_answers_everything_when_redis_is_down(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = MetricsRegistry()
    memory = MemoryMetadataStore()
    store = FallbackMetadataStore(dead_redis_store(), memory, metrics=metrics)
    with caplog.at_level(logging.INFO, logger="mirror.cache"):
        await store.set("a", b"1")
        await store.set("b", b"2", ttl=30)
        assert await store.get("a") == b"1"
        assert await store.get_many(["a", "b", "c"]) == [b"1", b"2", None]
        assert await collect(store, "") == {"a": b"1", "b": b"2"}
        await store.delete("a")
        assert await memory.get("a") is None
        await store.aclose()
    warnings = [r for r in caplog.records if r.name == "mirror.cache"]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    assert counted(metrics, "mirror_redis_outages_total") == 1
    assert counted(metrics, "mirror_redis_fallbacks_total") == 6
    assert redis_up(metrics) == 0


async def test_fallback_backs_off_before_retrying() -> None:
    primary = CountingStore(dead_redis_store())
    store = FallbackMetadataStore(
        primary, MemoryMetadataStore(), metrics=MetricsRegistry(), min_backoff=0.2
    )
    await store.get("k")
    await store.set("k", b"v")
    await store.get("k")
    assert primary.calls == 1
    await asyncio.sleep(0.25)
    assert await store.get("k") == b"v"
    assert primary.calls == 2
    await store.aclose()


def test_failover_backoff_doubles_and_resets() -> None:
    now = [0.0]
    failover = Failover(
        "test", min_backoff=1.0, max_backoff=3.0, metrics=MetricsRegistry(), clock=lambda: now[0]
    )
    boom = BackendUnavailable("down")
    failover.failed(boom)
    assert failover.down and not failover.should_try()
    failover.failed(boom)  # a straggler from before the outage was noticed
    now[0] = 1.0
    assert failover.should_try()
    failover.failed(boom)
    now[0] = 2.9
    assert not failover.should_try()
    now[0] = 3.0
    failover.failed(boom)  # backoff 4 s, capped at 3 s
    now[0] = 5.9
    assert not failover.should_try()
    now[0] = 6.0
    assert failover.should_try()
    failover.succeeded()
    assert not failover.down
    failover.failed(boom)
    now[0] = 7.0
    assert failover.should_try()
    with pytest.raises(ValueError):
        Failover("bad", min_backoff=2, max_backoff=1)


@pytest.mark.redis
async def test_fallback_uses_redis_again_when_it_returns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    raw = await redis_client()
    proxy = TcpProxy()
    port = await proxy.start()
    prefix = unique_prefix()
    client = redis_from_config(f"127.0.0.1:{port}", None, 0)
    memory = MemoryMetadataStore()
    metrics = MetricsRegistry()
    store = FallbackMetadataStore(
        RedisMetadataStore(client, prefix=prefix), memory, metrics=metrics, min_backoff=0.1
    )
    try:
        with caplog.at_level(logging.INFO, logger="mirror.cache"):
            await store.set("before", b"1")
            assert await raw.get(f"{prefix}md:before") == b"1"
            await proxy.stop()
            await store.set("during", b"2")
            assert await store.get("during") == b"2"
            assert await raw.get(f"{prefix}md:during") is None
            assert await memory.get("during") == b"2"
            assert redis_up(metrics) == 0
            await proxy.start()
            await asyncio.sleep(0.15)
            await store.set("after", b"3")
            assert await raw.get(f"{prefix}md:after") == b"3"
            assert await store.get("before") == b"1"
            assert await memory.get("after") is None
            assert redis_up(metrics) == 1
            # A delete while Redis is up also reaches the fallback, so the next outage
            # cannot bring "during" back.
            await store.delete("during")
            assert await memory.get("during") is None
        messages = [r.getMessage() for r in caplog.records if r.name == "mirror.cache"]
        assert len(messages) == 2
        assert "unavailable" in messages[0] and "reachable again" in messages[1]
    finally:
        await store.aclose()
        await client.aclose()
        await proxy.stop()
        await delete_prefix(raw, prefix)
        await raw.aclose()


@pytest.mark.redis
async def test_fallback_continues_a_scan_when_redis_dies_midway() -> None:
    raw = await redis_client()
    proxy = TcpProxy()
    port = await proxy.start()
    prefix = unique_prefix()
    client = redis_from_config(f"127.0.0.1:{port}", None, 0)
    memory = MemoryMetadataStore()
    store = FallbackMetadataStore(
        RedisMetadataStore(client, prefix=prefix), memory, metrics=MetricsRegistry()
    )
    try:
        for i in range(2000):
            await raw.set(f"{prefix}md:k/{i}", b"redis")
        await memory.set("k/fallback", b"memory")
        seen: dict[str, bytes] = {}
        async for key, value in store.scan("k/"):
            seen[key] = value
            if len(seen) == 1:
                await proxy.stop()
        assert seen["k/fallback"] == b"memory"
        assert 1 <= sum(v == b"redis" for v in seen.values()) < 2000
        assert store.failover.down
    finally:
        await store.aclose()
        await client.aclose()
        await proxy.stop()
        await delete_prefix(raw, prefix)
        await raw.aclose()


async def test_fallback_when_redis_hangs() -> None:
    proxy = TcpProxy(closed_port(), hang=True)
    port = await proxy.start()
    client = redis_from_config(f"127.0.0.1:{port}", None, 0, socket_timeout=0.1)
    memory = MemoryMetadataStore()
    await memory.set("k", b"cached")
    store = FallbackMetadataStore(RedisMetadataStore(client), memory, metrics=MetricsRegistry())
    started = time.monotonic()
    assert await store.get("k") == b"cached"
    assert time.monotonic() - started < 1.0
    assert proxy.connections >= 1
    await store.aclose()
    await client.aclose()
    await proxy.stop()


async def test_fallback_close_ignores_an_unreachable_primary() -> None:
    class Unclosable(MemoryMetadataStore):
        async def aclose(self) -> None:
            raise BackendUnavailable("cannot say goodbye")

    fallback = MemoryMetadataStore()
    await fallback.set("k", b"v")
    store = FallbackMetadataStore(Unclosable(), fallback, metrics=MetricsRegistry())
    await store.aclose()
    assert len(fallback) == 0  # the fallback was closed too


async def test_fallback_propagates_other_errors() -> None:
    class Broken(MemoryMetadataStore):
        async def get(self, key: str) -> bytes | None:
            raise RuntimeError("a bug, not an outage")

    store = FallbackMetadataStore(Broken(), MemoryMetadataStore(), metrics=MetricsRegistry())
    with pytest.raises(RuntimeError):
        await store.get("k")
    assert not store.failover.down
