"""An open blob download from an upstream registry."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx

from mirror.digests import Digest, DigestHasher
from mirror.registryhttp.errors import UpstreamContentError, UpstreamUnavailable

# A body must bring this many bytes per second of waiting on it, measured over stretches
# of RATE_WINDOW seconds: a 1 KiB/s drip fails after one window instead of tying every
# reader of the blob to it. Low enough for a slow link shared by many downloads.
MIN_RATE = 10 * 1024
RATE_WINDOW = 30.0


class UpstreamBlob:
    """An open blob download: its metadata, and its body as raw chunks (no content decoding).

    Iterate once; iteration raises UpstreamUnavailable when the transfer breaks
    (disconnect, read timeout), when the upstream brings fewer than
    `min_rate * rate_window` bytes in `rate_window` seconds of waiting on it (time the
    reader spends elsewhere does not count), or when the body is not done `deadline`
    seconds after iteration began; and UpstreamContentError at the end when fewer or
    more bytes than announced arrived, or (when an expected digest was given) the bytes
    do not hash to it. The owner must call `aclose()` (idempotent), or use `async with`.
    """

    def __init__(
        self,
        chunks: AsyncIterator[bytes],
        close: Callable[[], Awaitable[None]],
        *,
        size: int | None,
        length: int | None,
        status: int,
        offset: int,
        expected: Digest | None,
        where: str,
        min_rate: float = MIN_RATE,
        rate_window: float = RATE_WINDOW,
        deadline: float | None = None,
    ) -> None:
        self.size = size  # the whole blob's length, when the upstream said
        self.length = length  # bytes this response will carry, when known
        self.status = status
        self.offset = offset
        self.received = 0  # bytes of the body so far
        self._chunks = chunks
        self._close = close
        self._expected = expected
        self._where = where
        self._min_rate = max(min_rate, 0.0)
        self._window = rate_window
        self._deadline = deadline
        self._started = False

    async def __aenter__(self) -> UpstreamBlob:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __aiter__(self) -> AsyncIterator[bytes]:
        if self._started:
            raise RuntimeError("an upstream blob can be iterated only once")
        self._started = True
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[bytes]:
        hasher = DigestHasher(self._expected.algorithm) if self._expected else None
        loop = asyncio.get_running_loop()
        began = loop.time()
        # Progress is counted in stretches: from a checkpoint, `min_rate * window` bytes
        # must arrive within `window` seconds spent waiting on the upstream (the reader's
        # own time between chunks does not count); then the next stretch starts. Checked
        # as chunks arrive: a body that stops altogether is the read timeout's to end.
        wanted = self._min_rate * self._window
        waited, got = 0.0, 0
        try:
            while True:
                asked = loop.time()
                try:
                    chunk = await anext(self._chunks)
                except StopAsyncIteration:
                    break
                now = loop.time()
                waited += now - asked
                got += len(chunk)
                self.received += len(chunk)
                if got >= wanted:
                    waited, got = 0.0, 0
                elif waited >= self._window:
                    raise UpstreamUnavailable(
                        f"{self._where}: slower than {self._min_rate:g} bytes/s for "
                        f"{self._window:g}s (after {self.received} bytes)"
                    )
                if self._deadline is not None and now - began >= self._deadline:
                    raise UpstreamUnavailable(
                        f"{self._where}: body not done after {self._deadline:g}s "
                        f"({self.received} bytes)"
                    )
                if hasher is not None:
                    hasher.update(chunk)
                yield chunk
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(
                f"{self._where}: transfer broke after {self.received} bytes: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        finally:
            await self._close()
        if self.length is not None and self.received != self.length:
            raise UpstreamContentError(
                f"{self._where}: got {self.received} bytes, expected {self.length}",
                status=self.status,
            )
        if hasher is not None and self._expected is not None and hasher.digest() != self._expected:
            raise UpstreamContentError(
                f"{self._where}: content hashes to {hasher.digest()}", status=self.status
            )

    async def aclose(self) -> None:
        """Release the connection; safe to call more than once, and mid-iteration."""
        await self._close()
