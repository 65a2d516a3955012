"""An endpoint's event queue in Redis, shared by every replica: a Redis stream.

Each event is one stream entry (field ``e``) under ``<prefix>events:<endpoint>``.
Appending is ``XADD`` then ``XTRIM MAXLEN <limit>`` in one MULTI/EXEC transaction, so
the trim's reply is exactly the number of oldest entries dropped; delivered entries are
removed by id (``XDEL``), which never touches an entry that arrived since. The claim is
a lease from `mirror.coordination.redis_leases` on the same Redis, so one replica at a
time delivers an endpoint's events; a replica that dies holding it is replaced once the
lease's ttl has run out.

Durability is Redis's: with AOF (``appendfsync everysec`` or ``always``) a Redis
restart keeps the queue; without persistence only the mirror's own restarts are safe.
Every Redis failure surfaces as `BackendUnavailable`.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as aioredis

from mirror.coordination.leases import Lease
from mirror.coordination.redis_leases import RedisCoordinator
from mirror.coordination.redisconn import check_bytes_client, unavailable_on_error
from mirror.events.queue import QueuedEvent, check_limit

_FIELD = b"e"


class RedisEventQueue:
    """`EventQueue` on a Redis stream. The caller owns `client` (bytes replies)."""

    def __init__(
        self,
        client: aioredis.Redis,
        endpoint: str,
        *,
        prefix: str = "mirror:",
        limit: int = 100_000,
    ) -> None:
        check_bytes_client(client)
        self._client = client
        self._limit = check_limit(limit)
        self._key = f"{prefix}events:{endpoint}".encode()
        self._leases = RedisCoordinator(client, f"{prefix}events:")
        self._lease_key = f"deliver:{endpoint}"

    @property
    def description(self) -> str:
        return f"redis {self._key.decode()}"

    @property
    def limit(self) -> int:
        return self._limit

    async def append(self, payloads: Sequence[bytes]) -> int:
        if not payloads:
            return 0
        with unavailable_on_error():
            async with self._client.pipeline(transaction=True) as pipe:
                for payload in payloads:
                    pipe.xadd(self._key, {_FIELD: payload})
                pipe.xtrim(self._key, maxlen=self._limit, approximate=False)
                replies = await pipe.execute()
        return int(replies[-1])

    async def claim(self, ttl: float) -> Lease | None:
        return await self._leases.acquire(self._lease_key, ttl)

    async def peek(self, limit: int) -> list[QueuedEvent]:
        with unavailable_on_error():
            entries = await self._client.xrange(self._key, count=limit)
        found: list[QueuedEvent] = []
        for entry_id, fields in entries or ():
            payload = (fields or {}).get(_FIELD)
            if isinstance(payload, bytes):
                key = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
                found.append(QueuedEvent(key, payload))
        return found

    async def remove(self, keys: Sequence[str]) -> None:
        if keys:
            with unavailable_on_error():
                await self._client.xdel(self._key, *keys)

    async def size(self) -> int:
        with unavailable_on_error():
            return int(await self._client.xlen(self._key))

    async def aclose(self) -> None:
        await self._leases.aclose()
