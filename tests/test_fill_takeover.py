"""A download whose holder process is killed is taken over at once, and its readers carry on.

Two processes share a storage root, lease files and the metadata store, as two mirror
workers do. The other process (a real `FillManager` in a subprocess) downloads from an
upstream that sends half the blob and then hangs; this process follows its partial, and
then the other one is killed with SIGKILL. Before, the followers waited out the dead
holder's lease (its whole ttl) and then gave up with a short body; the dead holder's
temp file stayed behind for the next purge, a quarter of an hour later.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mirror.cache.fills.manager import FillManager
from mirror.coordination.file_leases import FileCoordinator
from mirror.coordination.metadata import DiskMetadataStore
from mirror.digests import Digest
from mirror.metrics import MetricsRegistry
from mirror.store import paths
from mirror.store.blobs import BlobStore
from mirror.store.drivers import create_driver
from tests.support.oci import random_bytes

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).parent.parent
SIZE = 3 * 1024 * 1024 + 7
SEED = 12
DATA = random_bytes(SIZE, SEED)
DIGEST = Digest.of(DATA)

# The holder: downloads DATA but gets only half of it from its upstream, then hangs. Its
# lease ttl is long, so that only noticing its death lets the follower go on soon.
_HOLDER = """
import asyncio, sys
from mirror.cache.fills.manager import FillManager
from mirror.coordination.file_leases import FileCoordinator
from mirror.coordination.metadata import DiskMetadataStore
from mirror.digests import Digest
from mirror.store.blobs import BlobStore
from mirror.store.drivers import create_driver
from tests.support.oci import random_bytes

root, leases, metadata, size, seed = sys.argv[1:6]
data = random_bytes(int(size), int(seed))


class HalfThenHang:
    size = len(data)

    async def __aiter__(self):
        yield data[: len(data) // 2]
        await asyncio.sleep(3600)

    async def aclose(self):
        pass


async def opener():
    return HalfThenHang()


async def main():
    blobs = BlobStore(create_driver("filesystem", {"rootdirectory": root}))
    fills = FillManager(
        blobs, FileCoordinator(leases), DiskMetadataStore(metadata), lease_ttl=120.0
    )
    content = await fills.fetch(Digest.of(data), opener)
    stream = await content.open(0, content.size)
    got = 0
    async for chunk in stream:  # until the half is written: the follower can read it
        got += len(chunk)
        if got >= len(data) // 2 - 1:
            break
    print("half", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


class WholeBlob:
    size: int | None = SIZE

    def __init__(self) -> None:
        self.opened = 0

    async def open(self) -> WholeBlob:
        self.opened += 1
        return self

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for start in range(0, SIZE, 256 * 1024):
            await asyncio.sleep(0.001)
            yield DATA[start : start + 256 * 1024]

    async def aclose(self) -> None:
        pass


def temp_files(root: Path) -> list[str]:
    blob_dir = root / paths.blob_dir(DIGEST).lstrip("/")
    return sorted(name for name in os.listdir(blob_dir) if name.startswith("."))


async def test_followers_of_a_killed_holder_carry_on_with_a_new_download(tmp_path: Path) -> None:
    root, leases, metadata = tmp_path / "root", tmp_path / "leases", tmp_path / "metadata"
    holder = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _HOLDER,
        *map(str, (root, leases, metadata, SIZE, SEED)),
        stdout=subprocess.PIPE,
        cwd=ROOT,
    )
    upstream = WholeBlob()
    blobs = BlobStore(create_driver("filesystem", {"rootdirectory": str(root)}))
    fills = FillManager(
        blobs,
        FileCoordinator(leases, poll_interval=0.05),
        DiskMetadataStore(metadata),
        lease_ttl=120.0,
        metrics=MetricsRegistry(),
    )
    try:
        assert holder.stdout is not None
        assert await asyncio.wait_for(holder.stdout.readline(), 30) == b"half\n"
        content = await asyncio.wait_for(fills.fetch(DIGEST, upstream.open), 10)
        assert content.downloading and content.size == SIZE
        stream = await content.open(0, SIZE)
        got = bytearray()
        async with asyncio.timeout(60):
            async for chunk in stream:  # follows the other process's partial
                got += chunk
                if len(got) >= SIZE // 4:
                    break
            assert upstream.opened == 0
            assert len(temp_files(root)) == 1
            os.kill(holder.pid, signal.SIGKILL)
            await holder.wait()
            async for chunk in stream:
                got += chunk
        assert bytes(got) == DATA
        await fills.drain()
        assert upstream.opened == 1
        assert await blobs.get(DIGEST, len(DATA)) == DATA
        # What the dead holder left was removed as soon as it was known dead.
        assert temp_files(root) == []
    finally:
        if holder.returncode is None:
            holder.kill()
            await holder.wait()
        await fills.aclose()
