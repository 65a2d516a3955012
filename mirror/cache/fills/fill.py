"""The state of one blob download as the readers in one process see it.

A `Fill` moves through `FillState` only by its own methods, each one transition:

    PENDING --streaming()--> STREAMING --verified()--> VERIFIED --stored()--> STORED
       ^                         |
       +------take_over()--------+        (any state but STORED) --fail()--> FAILED

`following()` marks a fill whose bytes another process downloads (it can be PENDING or
STREAMING like any other); `take_over()` is how such a fill becomes this process's own
download when the other holder gave up or died. Every transition wakes the readers.

Each `streaming()` starts an attempt. Readers that sent bytes of one attempt may carry on
with the next only if the earlier one was abandoned - its holder died mid-way, which
says nothing against the bytes - rather than ended by its holder, who may have found
them wrong (`continues`).
"""

from __future__ import annotations

import asyncio
import enum
from collections import deque
from collections.abc import Awaitable, Callable

from mirror.digests import Digest

Callback = Callable[[], Awaitable[None]]

# The newest batches stay in memory, so readers that keep up with the download take them
# from there as soon as they arrive (before they are written, no read back from the
# partial, no copy); laggards read the partial.
RECENT_WINDOW = 8 * 1024 * 1024


class FillState(enum.Enum):
    PENDING = "pending"  # no bytes yet: electing the downloader, opening the upstream
    STREAMING = "streaming"  # bytes arrive, from this process's download or another's
    VERIFIED = "verified"  # this process's download has every byte, and they check out
    STORED = "stored"  # committed: the stored blob has every byte
    FAILED = "failed"


class FillStateError(RuntimeError):
    """A transition that the fill's current state does not allow (a bug)."""


class Fill:
    """The state of one blob download as the readers in this process see it."""

    def __init__(self, digest: Digest) -> None:
        self.digest = digest
        self._state = FillState.PENDING
        self._remote = False
        self._attempt = 0
        self._continuous_from = 0  # readers of attempts before this must not carry on
        self.size: int | None = None
        self.locator: str | None = None  # where the partial blob is (see BlobStore.ingest)
        self.flushed = 0  # bytes in the partial blob
        self.available = 0  # bytes readers may have: in the partial or in memory
        self.error: BaseException | None = None
        self._on_stored: list[Callback] = []
        self._changed = asyncio.Event()
        self._recent: deque[tuple[int, bytes]] = deque()
        self._recent_bytes = 0

    @property
    def state(self) -> FillState:
        return self._state

    @property
    def remote(self) -> bool:
        """Another process downloads the blob; this one follows."""
        return self._remote

    @property
    def attempt(self) -> int:
        """Counts `streaming()` transitions: a reader that sees it change knows that the
        bytes now come from another download than the one it started on."""
        return self._attempt

    # -- transitions ---------------------------------------------------------------

    def following(self) -> None:
        """Another process holds the download; bytes will come from its partial."""
        self._expect("following", FillState.PENDING)
        self._remote = True
        self.notify()

    def streaming(self, size: int | None, locator: str | None) -> None:
        """Bytes start to arrive (here, or at `locator` when following): a new attempt."""
        self._expect("streaming", FillState.PENDING)
        self._state = FillState.STREAMING
        self._attempt += 1
        self.size, self.locator = size, locator
        self.flushed = self.available = 0
        self._forget()
        self.notify()

    def take_over(self, *, abandoned: bool) -> None:
        """The download this process followed ended unstored: this process downloads.

        `abandoned`: it ended because its holder died (readers may carry on), rather than
        by its holder's own doing (they must not).
        """
        if not self._remote:
            raise FillStateError(f"fill of {self.digest}: take_over of its own download")
        self._expect("take_over", FillState.PENDING, FillState.STREAMING)
        if not abandoned:
            self._continuous_from = self._attempt + 1
        self._state, self._remote = FillState.PENDING, False
        self.locator = None  # the size stays: it is the blob's
        self.flushed = self.available = 0
        self._forget()
        self.notify()

    def verified(self, size: int) -> None:
        """Every byte is written and matches the digest (not yet committed)."""
        self._expect("verified", FillState.STREAMING)
        self._state = FillState.VERIFIED
        self.flushed = self.available = size
        self.notify()

    def stored(self) -> list[Callback]:
        """The blob is committed; returns the `on_stored` callbacks, for the caller to run."""
        self._expect("stored", FillState.PENDING, FillState.STREAMING, FillState.VERIFIED)
        self._state = FillState.STORED
        self._forget()
        callbacks, self._on_stored = self._on_stored, []
        self.notify()
        return callbacks

    def fail(self, error: BaseException) -> None:
        if self._state is FillState.STORED:
            raise FillStateError(f"fill of {self.digest}: fail after stored")
        self._state, self.error = FillState.FAILED, error
        self._forget()
        self.notify()

    def _expect(self, transition: str, *allowed: FillState) -> None:
        if self._state not in allowed:
            raise FillStateError(f"fill of {self.digest}: {transition} in state {self._state}")

    def continues(self, attempt: int) -> bool:
        """Whether the current attempt goes on from where `attempt` left off: a reader
        that sent bytes of `attempt` may carry on with it."""
        return attempt >= self._continuous_from

    # -- callbacks -----------------------------------------------------------------

    def on_stored(self, callback: Callback) -> None:
        """Have `stored()` hand out `callback`."""
        self._on_stored.append(callback)

    def claim(self, callback: Callback) -> bool:
        """Take back `callback` if `stored()` has not handed it out (True: run it yourself)."""
        if callback in self._on_stored:
            self._on_stored.remove(callback)
            return True
        return False

    # -- progress ------------------------------------------------------------------

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
        """Bytes up to `flushed` are in the partial blob."""
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

    # -- waking readers ------------------------------------------------------------

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
