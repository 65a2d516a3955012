"""The state of one blob download as the readers in one process see it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from mirror.digests import Digest

Callback = Callable[[], Awaitable[None]]

PENDING, STREAMING, DONE, FAILED = "pending", "streaming", "done", "failed"


class Fill:
    """The state of one blob download as the readers in this process see it."""

    def __init__(self, digest: Digest) -> None:
        self.digest = digest
        self.state = PENDING
        self.size: int | None = None
        self.flushed = 0
        self.partial_path: str | None = None
        self.error: BaseException | None = None
        self.remote = False  # another process downloads it; this one follows
        self.complete = False  # every byte is written and matches the digest
        self.on_stored: list[Callback] = []
        self._changed = asyncio.Event()

    def notify(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    async def changed(self, timeout: float | None = None) -> None:
        """Wait for the next notification (or `timeout`)."""
        event = self._changed
        if timeout is None:
            await event.wait()
            return
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass

    def streaming(self, size: int | None, partial_path: str | None) -> None:
        self.state, self.size, self.partial_path, self.flushed = STREAMING, size, partial_path, 0
        self.complete = False
        self.notify()

    def verified(self, size: int) -> None:
        self.flushed, self.complete = size, True
        self.notify()

    def fail(self, error: BaseException) -> None:
        self.state, self.error = FAILED, error
        self.notify()

    def done(self) -> None:
        self.state = DONE
        self.notify()
