"""Background upkeep run by the server process (upload purging, stale partials)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

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
