"""Reading upstream responses in large pieces.

httpcore asks its network stream for at most 64 KiB per read; a blob body then costs
one trip through httpcore, h11, httpx and the download loop per 64 KiB, which made the
upstream client the slowest part of a cold pull (128 MiB from a loopback registry:
0.5-2.6 s against curl's 0.2-0.6 s on the shared 2-core machine). Asking the socket for
up to `READ_SIZE` instead lets each read return whatever has arrived (asyncio's socket
transport hands over up to 256 KiB at a time), cutting those trips about 4x. h11 takes
any amount of data per `receive_data`, so more than httpcore asked for is safe.
"""

from __future__ import annotations

from typing import Any

import httpcore

READ_SIZE = 1024 * 1024


class LargeReads(httpcore.AsyncNetworkStream):
    """A network stream whose reads ask for at least READ_SIZE bytes."""

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max(max_bytes, READ_SIZE), timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: Any,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return LargeReads(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)
