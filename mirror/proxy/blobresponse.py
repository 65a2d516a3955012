"""Sending blobs: zero-copy when the server and the driver allow it, streamed otherwise.

A blob the driver has as a local file goes out, in order of preference, by the ASGI
zero-copy send extension (`http.response.zerocopysend`: the server `sendfile(2)`s the
file, whole or one range; mirror's uvicorn offers it, `mirror.uvicorn_sendfile`), by the
path-send extension (`http.response.pathsend`, granian; whole blobs only), or read in
pieces and sent as body messages (TLS, ranges under granian, other servers).

A stream that fails part way is never finished as if complete: the exception propagates
to the server, which drops the connection, so the client sees a short body rather than a
clean end (its digest check then rejects it).
"""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator, Callable

import anyio
from starlette.types import Receive, Scope, Send

from mirror.proxy.headers import render
from mirror.store.tracking import ContentTracker
from mirror.store.view import BlobContent

# Bodies go to the server in pieces of at most this size: granian queues up to 32 body
# messages per connection before it waits for the client, so the piece size bounds the
# memory a slow client can pin (32 x 128 KiB = 4 MiB). With 256 KiB pieces, 8 skopeo
# clients of one uncached 256 MiB layer peaked at 201-203 MiB of RSS; with 128 KiB at
# 175-191 (bench workload 5, one run each, load average 10-25).
SEND_PIECE = 128 * 1024
# A file is read and sent in pieces of this size, each sent as read (no read buffer
# beside them, no copies): an idle client of a cached range pins at most 32 x 128 KiB
# (measured with granian: 1.4 MB of RSS, from 3.4 MB with 1 MiB reads cut into 256 KiB
# copies). Smaller pieces cost throughput (a worker-thread hop each).
FILE_PIECE = 128 * 1024
ZEROCOPY = "http.response.zerocopysend"
PATHSEND = "http.response.pathsend"


async def _send_body(send: Send, chunk: bytes, *, more: bool) -> None:
    if len(chunk) <= SEND_PIECE:
        await send({"type": "http.response.body", "body": chunk, "more_body": more})
        return
    view = memoryview(chunk)
    for start in range(0, len(chunk), SEND_PIECE):
        end = start + SEND_PIECE
        piece = bytes(view[start:end])
        await send(
            {"type": "http.response.body", "body": piece, "more_body": more or end < len(chunk)}
        )


class BlobResponse:
    """An ASGI response for a whole blob or one byte range of it (GET; HEAD is answered
    without content)."""

    def __init__(
        self,
        content: BlobContent,
        byte_range: tuple[int, int] | None,
        headers: dict[str, str],
        *,
        on_sent: Callable[[str, int], None] | None = None,
        tracker: ContentTracker | None = None,
    ) -> None:
        self.content = content
        self.on_sent = on_sent
        self.tracker = tracker
        self.range = byte_range
        size = content.size
        start, end = byte_range if byte_range is not None else (0, size - 1)
        self.start = start
        self.length = max(end - start + 1, 0)
        self.status = 206 if byte_range is not None else 200
        out = {
            "content-type": "application/octet-stream",
            "accept-ranges": "bytes",
            "docker-content-digest": str(content.digest),
            "etag": f'"{content.digest}"',
            "content-length": str(self.length),
            **headers,
        }
        if byte_range is not None:
            out["content-range"] = f"bytes {start}-{end}/{size}"
        self.raw_headers = render(out)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        tracker = self.tracker
        if tracker is None or not tracker.active:
            await self._respond(scope, send)
            return
        # Nobody removes a blob while a client is reading it (eviction, online GC).
        digest = self.content.digest
        tracker.begin_read(digest)
        try:
            await self._respond(scope, send)
        finally:
            tracker.end_read(digest)

    async def _respond(self, scope: Scope, send: Send) -> None:
        path = self.content.local_path
        extensions = scope.get("extensions") or {}
        if self.length == 0:
            await send(
                {"type": "http.response.start", "status": self.status, "headers": self.raw_headers}
            )
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        if path is not None:
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                path = None
            else:
                if ZEROCOPY in extensions:
                    await self._send_zero_copy(fd, send)
                else:
                    await self._send_file(fd, path, PATHSEND in extensions, send)
                self._sent()
                return
        stream = await self.content.open(self.start, self.start + self.length)
        await self._send_stream(stream, send)
        self._sent()

    def _sent(self) -> None:
        if self.on_sent is not None:
            self.on_sent("download" if self.content.downloading else "store", self.length)

    async def _send_zero_copy(self, fd: int, send: Send) -> None:
        with os.fdopen(fd, "rb", buffering=0) as file:  # already open: nothing blocks
            await send(
                {"type": "http.response.start", "status": self.status, "headers": self.raw_headers}
            )
            await send(
                {
                    "type": ZEROCOPY,
                    "file": file,
                    "offset": self.start,
                    "count": self.length,
                    "more_body": False,
                }
            )

    async def _send_file(self, fd: int, path: str, pathsend: bool, send: Send) -> None:
        try:
            await send(
                {"type": "http.response.start", "status": self.status, "headers": self.raw_headers}
            )
            if pathsend and self.range is None:
                # The server sends the file itself (zero copy); the blob is immutable and
                # replaced only atomically, so the path names the same bytes as our fd.
                await send({"type": "http.response.pathsend", "path": path})
                return
            offset, remaining = self.start, self.length
            while remaining > 0:
                chunk = await anyio.to_thread.run_sync(
                    os.pread, fd, min(FILE_PIECE, remaining), offset
                )
                if not chunk:
                    raise OSError(f"blob file {path} shrank while being sent")
                offset += len(chunk)
                remaining -= len(chunk)
                await _send_body(send, chunk, more=remaining > 0)
        finally:
            os.close(fd)

    async def _send_stream(self, stream: AsyncGenerator[bytes, None], send: Send) -> None:
        remaining = self.length
        try:
            await send(
                {"type": "http.response.start", "status": self.status, "headers": self.raw_headers}
            )
            async for data in stream:
                chunk = data[:remaining] if len(data) > remaining else data
                remaining -= len(chunk)
                await _send_body(send, chunk, more=remaining > 0)
                if remaining == 0:
                    break
        finally:
            await stream.aclose()
        if remaining > 0:
            raise OSError(f"blob {self.content.digest} ended {remaining} bytes early")
