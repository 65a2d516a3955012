"""The state of one blob download as the readers in one process see it."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

from mirror.digests import Digest

Callback = Callable[[], Awaitable[None]]

PENDING, STREAMING, DONE, FAILED = "pending", "streaming", "done", "failed"

# The newest batches stay in memory, so readers that keep up with the download take them
# from there as soon as they arrive (before they are written, no read back from the
# file, no copy); laggards read the file.
RECENT_WINDOW = 8 * 1024 * 1024


class Fill:
    """The state of one blob download as the readers in this process see it."""

    def __init__(self, digest: Digest) -> None:
        self.digest = digest
        self.state = PENDING
        self.size: int | None = None
        self.flushed = 0  # bytes in the partial file
        self.available = 0  # bytes readers may have: in the partial file or in memory
        self.partial_path: str | None = None
        self.error: BaseException | None = None
        self.remote = False  # another process downloads it; this one follows
        self.complete = False  # every byte is written and matches the digest
        self.on_stored: list[Callback] = []
        self._changed = asyncio.Event()
        self._recent: deque[tuple[int, bytes]] = deque()
        self._recent_bytes = 0

    def remember(self, offset: int, data: bytes) -> None:
        """Make a batch that starts at `offset` available to readers from memory.

        Batches leave memory (oldest first, beyond RECENT_WINDOW) only once flushed.
        """
        self._recent.append((offset, data))
        self._recent_bytes += len(data)
        self.available = offset + len(data)
        while self._recent_bytes > RECENT_WINDOW and len(self._recent) > 1:
            start, oldest = self._recent[0]
            if start + len(oldest) > self.flushed:
                break
            self._recent.popleft()
            self._recent_bytes -= len(oldest)

    def on_disk(self, flushed: int) -> None:
        """Bytes up to `flushed` are in the partial file."""
        self.flushed = flushed
        self.available = max(self.available, flushed)

    def recent_at(self, pos: int) -> tuple[int, bytes] | None:
        """The kept batch holding byte `pos`, with its offset, if any."""
        for start, data in reversed(self._recent):
            if start <= pos:
                return (start, data) if pos < start + len(data) else None
        return None

    def _forget(self) -> None:
        self._recent.clear()
        self._recent_bytes = 0

    def notify(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    async def changed(self, timeout: float | None = None) -> None:
        """Wait for the next notification (or `timeout`)."""
        event = self._changed
        if timeout is None:
            await event.wait()
            return
        # asyncio.timeout, not wait_for: no extra task, so a reader wakes one loop turn
        # after `notify` (wait_for took three, each behind a busy download: ~3 ms).
        try:
            async with asyncio.timeout(timeout):
                await event.wait()
        except TimeoutError:
            pass

    def streaming(self, size: int | None, partial_path: str | None) -> None:
        self.state, self.size, self.partial_path, self.flushed = STREAMING, size, partial_path, 0
        self.available, self.complete = 0, False
        self._forget()
        self.notify()

    def verified(self, size: int) -> None:
        self.flushed = self.available = size
        self.complete = True
        self.notify()

    def fail(self, error: BaseException) -> None:
        self.state, self.error = FAILED, error
        self._forget()
        self.notify()

    def done(self) -> None:
        self.state = DONE
        self._forget()
        self.notify()
