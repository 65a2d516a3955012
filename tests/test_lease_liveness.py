"""A lease whose holder process died is free at once where that can be known (same host).

Without this, a SIGKILLed holder's lease blocked its key for the whole ttl: every pull of
a blob it was downloading waited for it, on every process of the host.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mirror.coordination import liveness
from mirror.coordination.file_leases import FileCoordinator
from mirror.coordination.leases import Coordinator
from mirror.coordination.redis_leases import RedisCoordinator
from tests.support.redis import REDIS_ADDR, delete_prefix, redis_client, unique_prefix

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).parent.parent
TTL = 60.0  # far longer than any test here waits

_HOLDER = """
import asyncio, sys
async def main():
    if sys.argv[1] == "file":
        from mirror.coordination.file_leases import FileCoordinator
        coordinator = FileCoordinator(sys.argv[2])
    else:
        from mirror.coordination.redis_leases import RedisCoordinator
        from mirror.coordination.redisconn import redis_from_config
        coordinator = RedisCoordinator(redis_from_config(sys.argv[2], None, 0), sys.argv[3])
    lease = await coordinator.acquire("held", float(sys.argv[4]), b"doomed")
    assert lease is not None
    async with lease.keepalive():
        print("held", flush=True)
        await asyncio.sleep(600)
asyncio.run(main())
"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["file", pytest.param("redis", marks=pytest.mark.redis)])
async def leases(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[str, Coordinator, list[str]]]:
    """(kind, a coordinator, the arguments that give a subprocess the same lease space)."""
    if request.param == "file":
        coordinator = FileCoordinator(tmp_path, poll_interval=0.05)
        yield "file", coordinator, [str(tmp_path), ""]
        await coordinator.aclose()
        return
    client = await redis_client()
    prefix = unique_prefix()
    redis_coordinator = RedisCoordinator(client, prefix, poll_interval=0.05)
    try:
        yield "redis", redis_coordinator, [REDIS_ADDR, prefix]
    finally:
        await redis_coordinator.aclose()
        await delete_prefix(client, prefix)
        await client.aclose()


async def test_the_lease_of_a_killed_holder_is_free_at_once(
    leases: tuple[str, Coordinator, list[str]],
) -> None:
    kind, coordinator, where = leases
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _HOLDER, kind, *where, str(TTL), stdout=subprocess.PIPE, cwd=ROOT
    )
    try:
        assert proc.stdout is not None
        assert await asyncio.wait_for(proc.stdout.readline(), 30) == b"held\n"
        # A live holder keeps it.
        assert await coordinator.holder_info("held") == b"doomed"
        assert await coordinator.acquire("held", TTL) is None
        assert await coordinator.wait_released("held", 0.2) is False
        os.kill(proc.pid, signal.SIGKILL)
        await proc.wait()
        # Dead: free now, not in a minute.
        assert await coordinator.holder_info("held") is None
        assert await coordinator.wait_released("held", 0.2) is True
        lease = await coordinator.acquire("held", TTL, b"next")
        assert lease is not None
        assert await coordinator.holder_info("held") == b"next"
        await lease.release()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def _record(directory: Path, key: str) -> Path:
    return directory / f"{hashlib.sha256(key.encode()).hexdigest()}.lease"


async def test_holders_that_cannot_be_checked_keep_their_lease(tmp_path: Path) -> None:
    coordinator = FileCoordinator(tmp_path)
    _scope, pid, start = liveness.holder_id().decode().split(" ")
    expires = repr(time.time() + TTL).encode()
    for holder in (
        f"another-boot/pid:[1] {pid} {start}",  # another host or container: unknowable
        "garbage",
        "",  # a holder on a system without /proc
    ):
        record = b"\n".join((b"mirror-lease-1", b"f" * 32, expires, holder.encode(), b"info"))
        _record(tmp_path, "k").write_bytes(record)
        assert await coordinator.holder_info("k") == b"info", holder
        assert await coordinator.acquire("k", TTL) is None
    # A record of the versions before the holder field: held by whoever wrote it.
    _record(tmp_path, "k").write_bytes(b"\n".join((b"mirror-lease-1", b"f" * 32, expires, b"")))
    assert await coordinator.holder_info("k") == b""
    assert await coordinator.acquire("k", TTL) is None
    await coordinator.aclose()


def test_liveness_of_processes() -> None:
    own = liveness.holder_id()
    assert own and not liveness.is_dead(own)
    scope, pid, start = own.decode().split(" ")
    assert int(pid) == os.getpid()
    # The same pid with another start time is another process: this holder is gone.
    assert liveness.is_dead(f"{scope} {pid} {int(start) + 1}".encode())
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        holder = liveness.id_of(child.pid)
        assert holder.startswith(f"{scope} {child.pid} ".encode())
        assert not liveness.is_dead(holder)
        child.kill()
        deadline = time.monotonic() + 10
        # A zombie (killed, not reaped yet) is dead too.
        while not liveness.is_dead(holder) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert liveness.is_dead(holder)
    finally:
        child.kill()
        child.wait()
    assert liveness.is_dead(holder)
    for unknowable in (b"", b"x", b"a b c d", b"other 1 1", f"{scope} 0 1".encode()):
        assert not liveness.is_dead(unknowable)
