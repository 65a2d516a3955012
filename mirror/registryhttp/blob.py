"""An open blob download from an upstream registry."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import httpx

from mirror.digests import Digest, DigestHasher
from mirror.registryhttp.errors import UpstreamContentError, UpstreamUnavailable


class UpstreamBlob:
    """An open blob download: its metadata, and its body as raw chunks (no content decoding).

    Iterate once; iteration raises UpstreamUnavailable when the transfer breaks (disconnect,
    timeout) and UpstreamContentError at the end when fewer or more bytes than announced
    arrived, or (when an expected digest was given) the bytes do not hash to it. The owner
    must call `aclose()` (idempotent), or use `async with`.
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
    ) -> None:
        self.size = size  # the whole blob's length, when the upstream said
        self.length = length  # bytes this response will carry, when known
        self.status = status
        self.offset = offset
        self._chunks = chunks
        self._close = close
        self._expected = expected
        self._where = where
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
        received = 0
        try:
            async for chunk in self._chunks:
                received += len(chunk)
                if hasher is not None:
                    hasher.update(chunk)
                yield chunk
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(
                f"{self._where}: transfer broke after {received} bytes: {type(exc).__name__}: {exc}"
            ) from exc
        finally:
            await self._close()
        if self.length is not None and received != self.length:
            raise UpstreamContentError(
                f"{self._where}: got {received} bytes, expected {self.length}", status=self.status
            )
        if hasher is not None and self._expected is not None and hasher.digest() != self._expected:
            raise UpstreamContentError(
                f"{self._where}: content hashes to {hasher.digest()}", status=self.status
            )

    async def aclose(self) -> None:
        """Release the connection; safe to call more than once, and mid-iteration."""
        await self._close()
