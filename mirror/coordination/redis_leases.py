"""Leases on Redis, shared by processes on many hosts.

A lease is the string ``<prefix>lease:<key>`` = token (32 hex characters) + the holding
process (`mirror.coordination.liveness`) + newline + the holder's info, set with ``SET NX
PX``. A lease whose holding process is known to have died (from the same host) counts as
free: acquiring replaces it, if it is still that one, in one script. Renewal and release
are Lua scripts that act only when the stored token is the caller's, so nobody ever
extends or deletes another holder's lease. Release publishes the key on
``<prefix>lease-released``; each coordinator keeps one subscription to wake its waiters
at once, and waiters also poll (and time their sleep to the lease's expiry, or see its
holder die), so a lost message or a dead holder costs a poll interval at most.

Every Redis failure surfaces as `BackendUnavailable`; wrap the coordinator in
`FallbackCoordinator` to keep working through an outage.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis

from mirror.coordination import liveness
from mirror.coordination.failover import BackendUnavailable
from mirror.coordination.leases import Lease, OwnedLease, Wakeups, check_lease_ttl, new_token
from mirror.coordination.redisconn import as_bytes, check_bytes_client, ttl_ms, unavailable_on_error

logger = logging.getLogger("mirror.cache")

_TOKEN_LENGTH = 32

# KEYS[1] lease; ARGV token, ttl ms, info. Takes back an expired lease nobody else took.
_RENEW = """
local current = redis.call('GET', KEYS[1])
if current then
  if string.sub(current, 1, 32) ~= ARGV[1] then return 0 end
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
redis.call('SET', KEYS[1], ARGV[1] .. ARGV[3], 'PX', ARGV[2])
return 1
"""

# KEYS[1] lease; ARGV value, ttl ms, the dead holder's value. Replaces only that value.
_REPLACE = """
if redis.call('GET', KEYS[1]) == ARGV[3] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""

# KEYS[1] lease; ARGV token, channel, key.
_RELEASE = """
local current = redis.call('GET', KEYS[1])
if current and string.sub(current, 1, 32) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[2], ARGV[3])
  return 1
end
return 0
"""


def _payload(info: bytes) -> bytes:
    """What follows the token: the holding process, a newline, the info."""
    return liveness.holder_id() + b"\n" + info


def _info(value: bytes) -> bytes:
    rest = value[_TOKEN_LENGTH:]
    holder, newline, info = rest.partition(b"\n")
    if newline and (not holder or b" " in holder):
        return info
    return rest  # a value of the versions before the holder field: the info alone


def _holder_died(value: bytes) -> bool:
    holder, newline, _ = value[_TOKEN_LENGTH:].partition(b"\n")
    return bool(newline) and liveness.is_dead(holder)


class RedisCoordinator:
    """`Coordinator` on Redis. The caller owns `client` (which must return bytes)."""

    def __init__(
        self,
        client: aioredis.Redis,
        prefix: str = "mirror:",
        *,
        poll_interval: float = 0.1,
    ) -> None:
        check_bytes_client(client)
        self._client = client
        self._namespace = f"{prefix}lease:"
        self._channel = f"{prefix}lease-released"
        self._poll = poll_interval
        self._renew = client.register_script(_RENEW)
        self._replace = client.register_script(_REPLACE)
        self._release = client.register_script(_RELEASE)
        self._wakeups = Wakeups()
        self._subscribed = asyncio.Event()
        self._listener: asyncio.Task[None] | None = None

    def _name(self, key: str) -> bytes:
        return (self._namespace + key).encode()

    async def acquire(self, key: str, ttl: float, info: bytes = b"") -> Lease | None:
        check_lease_ttl(ttl)
        token = new_token()
        name = self._name(key)
        value = token.encode() + _payload(info)
        with unavailable_on_error():
            taken = await self._client.set(name, value, nx=True, px=ttl_ms(ttl))
            if not taken:
                current = as_bytes(await self._client.get(name))
                if current is not None and _holder_died(current):
                    args: list[bytes | int] = [value, ttl_ms(ttl), current]
                    taken = bool(await self._replace(keys=[name], args=args))
        return OwnedLease(self, key, token, ttl, info) if taken else None

    async def renew_lease(self, lease: Lease) -> bool:
        args: list[bytes | str | int] = [lease.token, ttl_ms(lease.ttl), _payload(lease.info)]
        with unavailable_on_error():
            return bool(await self._renew(keys=[self._name(lease.key)], args=args))

    async def release_lease(self, lease: Lease) -> None:
        args = [lease.token, self._channel, lease.key]
        with unavailable_on_error():
            await self._release(keys=[self._name(lease.key)], args=args)

    async def holder_info(self, key: str) -> bytes | None:
        with unavailable_on_error():
            value = as_bytes(await self._client.get(self._name(key)))
        if value is None or _holder_died(value):
            return None
        return _info(value)

    async def _time_left(self, key: str) -> float | None:
        """Seconds until the lease on `key` expires, None when it is free (or its holder
        died)."""
        with unavailable_on_error():
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.pttl(self._name(key))
                pipe.get(self._name(key))
                ms, value = await pipe.execute()
        ms = int(ms)
        if ms == -2 or (value is not None and _holder_died(as_bytes(value) or b"")):
            return None
        return math.inf if ms < 0 else ms / 1000

    async def wait_released(self, key: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._wakeups.watch(key) as released:
            if await self._time_left(key) is None:
                return True
            await self._listening(min(0.25, timeout))
            # Checked again below: a release before the subscription was active sent
            # its message to nobody.
            while True:
                left = await self._time_left(key)
                if left is None:
                    return True
                now = time.monotonic()
                if now >= deadline:
                    return False
                try:
                    await asyncio.wait_for(
                        released.wait(), min(self._poll, left + 0.001, deadline - now)
                    )
                except TimeoutError:
                    continue
                return True

    async def _listening(self, patience: float) -> None:
        """Start the subscriber if needed; wait up to `patience` for it to be active."""
        if self._listener is None or self._listener.done():
            self._listener = asyncio.create_task(self._listen())
        if not self._subscribed.is_set():
            try:
                await asyncio.wait_for(self._subscribed.wait(), patience)
            except TimeoutError:
                pass  # waiters poll until it is

    async def _listen(self) -> None:
        backoff = 0.1
        while True:
            pubsub = self._client.pubsub()
            try:
                with unavailable_on_error():
                    await pubsub.subscribe(self._channel)
                    while True:
                        # None after an idle timeout: nothing to do but read again.
                        message = await pubsub.get_message(timeout=30.0) or {"type": None}
                        if message["type"] == "subscribe":
                            # Only now will Redis deliver what is published after.
                            self._subscribed.set()
                            backoff = 0.1
                        elif message["type"] == "message":
                            self._wakeups.wake(bytes(message["data"]).decode())
            except BackendUnavailable as exc:
                logger.debug("lease release subscription lost: %s", exc)
            except Exception:
                logger.exception("lease release subscription failed")
            finally:
                self._subscribed.clear()
                close: Callable[[], Awaitable[None]] = pubsub.aclose
                await close()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    async def aclose(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
            self._listener = None
