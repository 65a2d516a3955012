"""A process holding notification queues is SIGKILLed and restarted: every event whose
emit returned arrives, and a delivery cut off by the kill is made again, with the same
id and bytes (so the receiver can de-duplicate). On local disk and through Redis."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.redis import REDIS_ADDR, delete_prefix, redis_client, unique_prefix
from tests.support.webhook import WebhookReceiver

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(params=["disk", "redis"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[list[str]]:
    """Extra emitter arguments: none for the local queue, a Redis prefix for Redis."""
    if request.param == "disk":
        yield []
        return
    client = await redis_client()
    prefix = unique_prefix()
    try:
        yield ["--redis", REDIS_ADDR, "--prefix", prefix]
    finally:
        await delete_prefix(client, prefix)
        await client.aclose()


class Emitter:
    """One run of tests/support/event_emitter.py."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.queued: list[str] = []

    @classmethod
    async def start(cls, directory: Path, url: str, count: int, extra: list[str]) -> Emitter:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.support.event_emitter",
            "--dir",
            str(directory),
            "--url",
            url,
            "--count",
            str(count),
            *extra,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=asyncio.subprocess.PIPE,
        )
        return cls(proc)

    async def read_until(self, queued: int | None = None, timeout: float = 60.0) -> None:
        """Read ``queued`` lines until `queued` ids were seen (None: until ``done``)."""
        assert self.proc.stdout is not None
        async with asyncio.timeout(timeout):
            while queued is None or len(self.queued) < queued:
                line = (await self.proc.stdout.readline()).decode().strip()
                if line == "done" or not line:
                    return
                self.queued.append(line.removeprefix("queued "))

    async def kill(self) -> None:
        self.proc.kill()
        await self.proc.wait()
        await self.read_until()  # what it printed before dying is still in the pipe


def assert_deduplicable(receiver: WebhookReceiver) -> None:
    """Every copy of an event is the same event: receivers can drop repeats by id."""
    by_id: dict[str, list[object]] = {}
    for event in receiver.events():
        by_id.setdefault(str(event["id"]), []).append(event)
    for copies in by_id.values():
        assert all(copy == copies[0] for copy in copies)


async def test_events_queued_while_the_sink_is_down_survive_a_sigkill(
    tmp_path: Path, backend: list[str]
) -> None:
    receiver = WebhookReceiver()
    await receiver.start()
    await receiver.stop()  # down while the first process emits
    first = await Emitter.start(tmp_path, receiver.url, 300, backend)
    try:
        await first.read_until(120)
    finally:
        await first.kill()  # SIGKILL in the middle of the emits
    assert len(first.queued) >= 120
    await receiver.start()
    second = await Emitter.start(tmp_path, receiver.url, 0, backend)
    try:
        await receiver.wait_for(set(first.queued), timeout=60)
    finally:
        await second.kill()
        await receiver.stop()
    assert_deduplicable(receiver)


async def test_a_delivery_cut_off_by_sigkill_is_made_again(
    tmp_path: Path, backend: list[str]
) -> None:
    async with WebhookReceiver() as receiver:
        receiver.hold()  # reads the envelope, never answers: the POST is in flight
        first = await Emitter.start(tmp_path, receiver.url, 3, backend)
        try:
            await first.read_until()
            await receiver.wait_for_requests(1, timeout=30)
        finally:
            await first.kill()
        assert len(first.queued) == 3
        cut_off = len(receiver.ids())
        # The head only (a retry after the 1 s timeout may have read it again).
        assert set(receiver.ids()) == {first.queued[0]}
        receiver.release()
        second = await Emitter.start(tmp_path, receiver.url, 0, backend)
        try:
            await receiver.wait_for(set(first.queued), timeout=60)
        finally:
            await second.kill()
    ids = receiver.ids()
    assert ids[cut_off:] == first.queued  # the cut-off one again, then the rest, in order
    assert_deduplicable(receiver)
