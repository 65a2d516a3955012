"""The access log and deletion marks on the metadata stores (memory, and the disk store
that several processes of one host share)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mirror.coordination.accesslog import MetadataAccessLog
from mirror.coordination.metadata import DiskMetadataStore, MemoryMetadataStore, MetadataStore
from mirror.digests import Digest

pytestmark = pytest.mark.anyio

A = Digest.of(b"a")
B = Digest.of(b"b")


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_batched_touches_are_seen_here_at_once_and_elsewhere_after_a_flush() -> None:
    shared = MemoryMetadataStore()
    clock = Clock()
    here = MetadataAccessLog(shared, clock=clock, flush_interval=60.0)
    elsewhere = MetadataAccessLog(shared, clock=clock)
    await here.touch([A])
    assert await here.last_used([A, B]) == [1000.0, None]
    assert await elsewhere.last_used([A]) == [None]
    await here.flush()
    assert await elsewhere.last_used([A]) == [1000.0]
    clock.now = 2000.0
    await elsewhere.touch([A], durable=True)
    assert await here.last_used([A]) == [2000.0]
    await here.aclose()
    await elsewhere.aclose()


async def test_the_background_writer_flushes_on_its_own_and_at_close() -> None:
    shared = MemoryMetadataStore()
    log = MetadataAccessLog(shared, clock=Clock(5.0), flush_interval=0.01)
    await log.touch([A])
    for _ in range(200):
        if await shared.get("access/" + str(A)) is not None:
            break
        await asyncio.sleep(0.01)
    assert await MetadataAccessLog(shared).last_used([A]) == [5.0]
    await log.touch([B])
    await log.aclose()
    assert await MetadataAccessLog(shared).last_used([B]) == [5.0]


async def test_a_failed_flush_keeps_the_touches_for_the_next_one() -> None:
    class Failing(MemoryMetadataStore):
        fail = True

        async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
            if self.fail:
                raise OSError("disk full")
            await super().set(key, value, ttl)

    store = Failing()
    log = MetadataAccessLog(store, clock=Clock(7.0))
    await log.touch([A])
    with pytest.raises(OSError):
        await log.flush()
    store.fail = False
    await log.flush()
    assert await MetadataAccessLog(store).last_used([A]) == [7.0]


async def test_deletion_marks_lapse_and_are_withdrawn() -> None:
    log = MetadataAccessLog(MemoryMetadataStore())
    await log.mark(A, ttl=0.05)
    await log.mark(B, ttl=60.0)
    assert await log.marked([A, B]) == [True, True]
    await log.unmark(B)
    await log.unmark(B)
    await asyncio.sleep(0.1)
    assert await log.marked([A, B]) == [False, False]


async def test_processes_sharing_the_disk_store_see_each_other(tmp_path: Path) -> None:
    first: MetadataStore = DiskMetadataStore(tmp_path / "metadata")
    second: MetadataStore = DiskMetadataStore(tmp_path / "metadata")
    try:
        collector = MetadataAccessLog(first, prefix="x/")
        server = MetadataAccessLog(second, prefix="x/", clock=Clock(42.0))
        await collector.mark(A, ttl=60.0)
        await server.touch([A], durable=True)
        assert await server.marked([A]) == [True]
        assert await collector.last_used([A]) == [42.0]
        assert await MetadataAccessLog(first).last_used([A]) == [None]  # other prefix
    finally:
        await first.aclose()
        await second.aclose()


def test_intervals_must_be_positive() -> None:
    with pytest.raises(ValueError):
        MetadataAccessLog(MemoryMetadataStore(), flush_interval=0)
