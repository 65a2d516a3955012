"""Background upkeep run by the server process: upload purging, stale partial files."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable

from mirror.store.drivers.base import is_temp_name

log = logging.getLogger("mirror.upkeep")


class Periodic:
    """Runs `job` every `interval` seconds (first run after `delay`) until stopped."""

    def __init__(
        self, name: str, job: Callable[[], Awaitable[object]], interval: float, delay: float = 0.0
    ) -> None:
        self.name = name
        self.job = job
        self.interval = interval
        self.delay = delay
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _loop(self) -> None:
        await asyncio.sleep(self.delay)
        while True:
            try:
                await self.job()
            except Exception:
                log.exception("%s failed", self.name)
            await asyncio.sleep(self.interval)


def remove_stale_partials(root: str, older_than: float) -> int:
    """Delete temporary files (``.<name>.tmp-<hex>``) left in `root` by crashed writers.

    Only files untouched for `older_than` seconds go: a live download keeps writing, so
    its file stays fresh. Runs in a thread (it walks the tree).
    """
    cutoff = time.time() - older_than
    removed = 0
    for directory, _dirs, files in os.walk(root):
        for name in files:
            if not is_temp_name(name):
                continue
            path = os.path.join(directory, name)
            try:
                if os.stat(path).st_mtime < cutoff:
                    os.unlink(path)
                    removed += 1
            except FileNotFoundError:
                continue
    if removed:
        log.info("removed %d stale partial files under %s", removed, root)
    return removed
