"""Temp files of a writer that was killed go at the next sweep, not half an hour later
(issue 8, low): a writer holds its temp file's lock, which the kernel drops when it dies."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mirror.store.drivers import create_driver
from mirror.store.drivers.base import is_temp_name
from mirror.store.drivers.filesystem import TEMP_LOCK_GRACE
from mirror.store.store import Store

pytestmark = pytest.mark.anyio

# Writes into a temp file through the driver, says so, and waits to be killed.
_WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from mirror.store.drivers import create_driver

    async def main() -> None:
        driver = create_driver("filesystem", {"rootdirectory": sys.argv[1]})
        writer = await driver.writer("/blobs/killed/data")
        await writer.write(b"x" * 300_000)
        await driver.put_content("/blobs/done/data", b"committed")
        print("writing", flush=True)
        await asyncio.sleep(60)

    asyncio.run(main())
    """
)


def temp_files(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if is_temp_name(path.name))


def age(path: Path, seconds: float) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


async def test_the_temp_file_of_a_killed_writer_goes_at_once(tmp_path: Path) -> None:
    root = tmp_path / "root"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _WRITER, str(root), stdout=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        assert await asyncio.wait_for(proc.stdout.readline(), 30) == b"writing\n"
        [killed] = temp_files(root)
        store = Store(create_driver("filesystem", {"rootdirectory": str(root)}))
        age(killed, 2 * TEMP_LOCK_GRACE)
        assert await store.purge_partials(3600) == 0, "its writer is alive"
    finally:
        proc.send_signal(signal.SIGKILL)
        await asyncio.wait_for(proc.wait(), 10)

    live = await store.driver.writer("/blobs/live/data")
    await live.write(b"y" * 300_000)
    [live_temp] = [path for path in temp_files(root) if path != killed]
    age(live_temp, 7200)  # untouched for long, but its writer lives
    assert await store.purge_partials(3600) == 1
    assert temp_files(root) == [live_temp]
    await live.commit()
    assert (root / "blobs" / "live" / "data").stat().st_size == 300_000
    assert (root / "blobs" / "done" / "data").read_bytes() == b"committed"
    assert temp_files(root) == []


async def test_a_new_unlocked_temp_file_is_left_alone_for_a_moment(tmp_path: Path) -> None:
    """Between creating its file and locking it, a writer holds no lock yet."""
    store = Store(create_driver("filesystem", {"rootdirectory": str(tmp_path)}))
    (tmp_path / "blobs").mkdir()
    new = tmp_path / "blobs" / f".data.tmp-{'a' * 32}"
    new.write_bytes(b"x")
    assert await store.purge_partials(3600) == 0
    age(new, 2 * TEMP_LOCK_GRACE)
    assert await store.purge_partials(3600) == 1
    assert not new.exists()
