"""The metadata store on Redis, shared by processes on many hosts.

Entries are plain Redis strings under ``<prefix>md:<key>`` with PX expiry. Every Redis
failure surfaces as `BackendUnavailable`; wrap the store in `FallbackMetadataStore` to
keep serving through an outage.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import redis.asyncio as aioredis

from mirror.coordination.metadata import check_ttl
from mirror.coordination.redisconn import (
    as_bytes,
    check_bytes_client,
    redis_from_url,
    ttl_ms,
    unavailable_on_error,
)

# Keys per SCAN step and per MGET; bounds what one call holds in memory.
_BATCH = 500


def glob_escape(text: str) -> str:
    """`text` as a Redis MATCH pattern that matches only itself."""
    return "".join("\\" + ch if ch in "*?[]\\^-" else ch for ch in text)


class RedisMetadataStore:
    """`MetadataStore` on Redis.

    Given a URL, the store makes (and closes on ``aclose``) its own fail-fast client;
    given a client, the caller keeps owning it. The client must return bytes.
    """

    def __init__(self, url_or_client: str | aioredis.Redis, prefix: str = "mirror:") -> None:
        if isinstance(url_or_client, str):
            self._client = redis_from_url(url_or_client)
            self._owns_client = True
        else:
            check_bytes_client(url_or_client)
            self._client = url_or_client
            self._owns_client = False
        self._namespace = f"{prefix}md:"

    def _key(self, key: str) -> bytes:
        return (self._namespace + key).encode()

    async def get(self, key: str) -> bytes | None:
        with unavailable_on_error():
            return as_bytes(await self._client.get(self._key(key)))

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        values: list[bytes | None] = []
        for start in range(0, len(keys), _BATCH):
            batch = [self._key(key) for key in keys[start : start + _BATCH]]
            with unavailable_on_error():
                values.extend(as_bytes(v) for v in await self._client.mget(batch))
        return values

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        check_ttl(ttl)
        with unavailable_on_error():
            await self._client.set(self._key(key), value, px=None if ttl is None else ttl_ms(ttl))

    async def delete(self, key: str) -> None:
        with unavailable_on_error():
            await self._client.delete(self._key(key))

    async def scan(self, prefix: str) -> AsyncIterator[tuple[str, bytes]]:
        pattern = glob_escape(self._namespace + prefix) + "*"
        skip = len(self._namespace.encode())
        cursor = 0
        while True:
            with unavailable_on_error():
                cursor, keys = await self._client.scan(cursor, match=pattern, count=_BATCH)
                values = await self._client.mget(keys) if keys else []
            for key, reply in zip(keys, values, strict=True):
                value = as_bytes(reply)
                # None: the entry expired (or was deleted) since SCAN saw the key.
                if value is not None:
                    raw = key if isinstance(key, bytes) else key.encode()
                    yield raw[skip:].decode(), value
            if cursor == 0:
                return

    async def aclose(self) -> None:
        if self._owns_client:
            with unavailable_on_error():
                await self._client.aclose()
