"""A small file system of its own (tmpfs) for tests that fill a disk up."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.binaries import require_binary, require_root, unavailable


@contextmanager
def small_filesystem(where: Path, size: int) -> Iterator[Path]:
    """A tmpfs of `size` bytes mounted at `where` (created) for the duration; needs root
    and mount(8), else the test skips locally and fails in CI."""
    require_root("mounting a small file system")
    mount, umount = require_binary("mount"), require_binary("umount")
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [mount, "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        timeout=30,
        check=False,
    )
    if done.returncode != 0:
        unavailable(f"cannot mount a tmpfs at {where}: {done.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run([umount, "-l", str(where)], capture_output=True, timeout=30, check=False)
