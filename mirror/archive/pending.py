"""A bounded set of background tasks whose failures are not lost."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


class Pending:
    """At most `limit` tasks at once; `add` waits for room. The first failure is raised
    by the next `add` or by `close`, which waits for (or, after a failure, cancels) the
    rest."""

    def __init__(self, limit: int) -> None:
        self._limit = max(limit, 1)
        self._tasks: set[asyncio.Task[None]] = set()
        self._error: BaseException | None = None

    async def add(self, work: Coroutine[Any, Any, None]) -> None:
        self._raise()
        while len(self._tasks) >= self._limit:
            done, _ = await asyncio.wait(self._tasks, return_when=asyncio.FIRST_COMPLETED)
            self._collect(done)
            self._raise()
        task = asyncio.create_task(work)
        self._tasks.add(task)

    async def close(self) -> None:
        """Wait for every task; raise the first failure (the others are cancelled)."""
        try:
            while self._tasks:
                if self._error is not None:
                    for task in self._tasks:
                        task.cancel()
                done, _ = await asyncio.wait(self._tasks, return_when=asyncio.FIRST_COMPLETED)
                self._collect(done)
        finally:
            for task in self._tasks:
                task.cancel()
        self._raise()

    def _collect(self, done: set[asyncio.Task[None]]) -> None:
        for task in done:
            self._tasks.discard(task)
            if task.cancelled():
                continue
            error = task.exception()
            if error is not None and self._error is None:
                self._error = error

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error
