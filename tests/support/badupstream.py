"""An upstream registry that damages its blob bodies on demand, served from a thread.

`FaultyBlobs` wraps an ASGI registry; while `mode` is set, every `GET` of a blob that
would answer 200 is changed:

- ``cut``: the connection is cut half-way through the announced body;
- ``flip``: one byte in the middle is flipped (length and framing intact);
- ``short``: the last 100 bytes are left out, and `Content-Length` says so (well framed);
- ``long``: 100 bytes are added, and `Content-Length` says so (well framed);
- ``stall``: half the body is sent, then nothing, for `stall_for` seconds, then a cut;
- ``slow``: the body, whole, at `rate` bytes a second.

`serving_faulty_registry` serves an in-memory standalone registry so wrapped, from a
background thread (blocking tests and server processes can use it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mirror.proxy.app import standalone_app
from mirror.store.drivers import create_driver
from tests.support.threadserver import serving_in_thread

Mode = Literal["cut", "flip", "short", "long", "stall", "slow"]
MODES: tuple[Mode, ...] = ("cut", "flip", "short", "long", "stall")
_PIECE = 64 * 1024


class Cut(Exception):
    """Raised inside the app to make the server drop the connection."""


@dataclass
class FaultyBlobs:
    app: ASGIApp
    mode: Mode | None = None
    rate: float = 1 << 20
    stall_for: float = 10.0
    blob_gets: int = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "GET"
            or "/blobs/sha256:" not in scope["path"]
        ):
            await self.app(scope, receive, send)
            return
        self.blob_gets += 1
        mode = self.mode
        if mode is None:
            await self.app(scope, receive, send)
            return
        start: Message = {}
        body = bytearray()

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            else:
                body.extend(message.get("body", b""))

        await self.app(scope, receive, capture)
        if start.get("status") != 200:
            await send(start)
            await send({"type": "http.response.body", "body": bytes(body)})
            return
        await self._damage(mode, start, bytes(body), send)

    async def _damage(self, mode: Mode, start: Message, data: bytes, send: Send) -> None:
        half = len(data) // 2
        if mode == "flip":
            data = data[:half] + bytes([data[half] ^ 0x01]) + data[half + 1 :]
        elif mode == "short":
            data = data[:-100]
        elif mode == "long":
            data += b"\0" * 100
        headers = [
            (name, value) for name, value in start["headers"] if name.lower() != b"content-length"
        ]
        announced = len(data)
        await send({**start, "headers": [*headers, (b"content-length", b"%d" % announced)]})
        if mode in ("cut", "stall"):
            await send({"type": "http.response.body", "body": data[:half], "more_body": True})
            if mode == "stall":
                await asyncio.sleep(self.stall_for)
            raise Cut(f"cut after {half} of {announced} bytes")
        if mode == "slow":
            for offset in range(0, len(data), _PIECE):
                piece = data[offset : offset + _PIECE]
                await send({"type": "http.response.body", "body": piece, "more_body": True})
                await asyncio.sleep(len(piece) / self.rate)
            await send({"type": "http.response.body", "body": b""})
            return
        await send({"type": "http.response.body", "body": data})


@contextmanager
def serving_faulty_registry() -> Iterator[tuple[str, FaultyBlobs]]:
    """A standalone in-memory registry behind `FaultyBlobs`; yields (base URL, faults)."""
    faults = FaultyBlobs(standalone_app(create_driver("inmemory", {}), delete_enabled=True))
    with serving_in_thread(faults) as url:
        yield url, faults
