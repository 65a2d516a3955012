"""The upstream client's network streams read in large pieces, through TLS as well."""

from __future__ import annotations

from typing import Any

import httpcore
import pytest

from mirror.registryhttp.reads import READ_SIZE, LargeReads

pytestmark = pytest.mark.anyio


class Recording(httpcore.AsyncNetworkStream):
    def __init__(self) -> None:
        self.asked: list[int] = []
        self.tls: list[str | None] = []

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self.asked.append(max_bytes)
        return b"x"

    async def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        self.tls.append(server_hostname)
        return self

    def get_extra_info(self, info: str) -> Any:
        return f"info:{info}"


async def test_reads_ask_for_at_least_read_size() -> None:
    inner = Recording()
    stream = LargeReads(inner)
    assert await stream.read(65536) == b"x"
    await stream.read(4 * READ_SIZE)
    assert inner.asked == [READ_SIZE, 4 * READ_SIZE]
    assert stream.get_extra_info("server_addr") == "info:server_addr"


async def test_a_tls_stream_reads_large_too() -> None:
    inner = Recording()
    upgraded = await LargeReads(inner).start_tls(None, "registry.test")
    assert isinstance(upgraded, LargeReads)
    await upgraded.read(100)
    assert inner.tls == ["registry.test"] and inner.asked == [READ_SIZE]
