"""Redis clients that fail fast, and the translation of Redis errors.

A dead Redis must cost a request milliseconds, not seconds: clients made here use short
connect and read timeouts and retry a command at most once (enough to replace a pooled
connection that a Redis restart broke). Every Redis-facing module wraps its calls in
`unavailable_on_error` so that the fallback wrappers need to know only
`BackendUnavailable`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from mirror.coordination.failover import BackendUnavailable

DEFAULT_PORT = 6379


def parse_addr(addr: str) -> tuple[str, int]:
    """Split ``host:port`` (``[v6addr]:port``; port defaults to 6379) into host and port."""
    addr = addr.strip()
    if addr.startswith("["):
        host, sep, rest = addr[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"invalid Redis address {addr!r}")
        port_text = rest[1:]
    elif addr.count(":") == 1:
        host, _, port_text = addr.partition(":")
    else:
        # No colon, or a bare IPv6 address without a port.
        host, port_text = addr, ""
    if not host:
        raise ValueError(f"invalid Redis address {addr!r}: no host")
    if not port_text:
        return host, DEFAULT_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"invalid Redis address {addr!r}: bad port")
    return host, int(port_text)


def redis_from_url(
    url: str, *, dial_timeout: float = 1.0, socket_timeout: float = 1.0
) -> aioredis.Redis:
    """A fail-fast client for a ``redis://`` (or ``rediss://``, ``unix://``) URL."""
    return aioredis.Redis.from_url(
        url,
        socket_connect_timeout=dial_timeout,
        socket_timeout=socket_timeout,
        retry=Retry(NoBackoff(), 1),
        decode_responses=False,
    )


def redis_from_config(
    addr: str,
    password: str | None,
    db: int,
    *,
    username: str | None = None,
    dial_timeout: float = 1.0,
    socket_timeout: float = 1.0,
) -> aioredis.Redis:
    """A client for the Redis at `addr` (``host:port`` as in the reference registry's
    ``redis.addr``). Connections are made lazily; the caller closes it with ``aclose()``.
    """
    host, port = parse_addr(addr)
    return aioredis.Redis(
        host=host,
        port=port,
        db=db,
        username=username,
        password=password,
        socket_connect_timeout=dial_timeout,
        socket_timeout=socket_timeout,
        retry=Retry(NoBackoff(), 1),
        decode_responses=False,
    )


async def redis_available(client: aioredis.Redis) -> bool:
    """Whether `client` can reach its Redis now (one PING; never raises for a dead Redis)."""
    try:
        with unavailable_on_error():
            return bool(await client.ping())
    except BackendUnavailable:
        return False


def check_bytes_client(client: aioredis.Redis) -> None:
    """Refuse a client that decodes replies: the stores here deal in bytes."""
    if client.connection_pool.connection_kwargs.get("decode_responses"):
        raise ValueError("the Redis client must be created with decode_responses=False")


def ttl_ms(ttl: float) -> int:
    """Seconds as PX milliseconds, rounded up so that a short ttl never becomes 0."""
    return max(1, math.ceil(ttl * 1000))


def as_bytes(value: bytes | str | None) -> bytes | None:
    """A reply from a bytes client (see `check_bytes_client`), typed as such."""
    if isinstance(value, str):
        raise TypeError("the Redis client decodes replies; it must return bytes")
    return value


@contextmanager
def unavailable_on_error() -> Iterator[None]:
    """Turn any Redis or socket failure inside the block into `BackendUnavailable`.

    All of `RedisError` counts, not only connection errors: a Redis that is loading, out
    of memory, read-only or refusing our credentials is as unusable as a dead one, and the
    caller must degrade rather than fail a pull.
    """
    try:
        yield
    except (RedisError, OSError) as exc:
        # OSError includes TimeoutError (and asyncio.TimeoutError since 3.11).
        raise BackendUnavailable(f"{type(exc).__name__}: {exc}") from exc
