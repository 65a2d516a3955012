"""ASGI zero-copy send for uvicorn: cached blobs go from the page cache to the socket
with `sendfile(2)`, as the reference registry sends them.

uvicorn implements no zero-copy extension. `SendfileProtocol` is its httptools protocol
(as `mirror.headertimeout` hardens it) with the ASGI "Zero Copy Send" extension
(`http.response.zerocopysend`: `file`, `offset`, `count`, `more_body`) offered on plain-
TCP connections: the status line and headers go through uvicorn as usual; once they have
left its buffer, the body is `os.sendfile`d from the file to the socket on the event
loop (non-blocking, waiting for the socket to take more), and uvicorn is then told the
body ended, so keep-alive, `Connection: close` and its bookkeeping stay its own. A TLS
connection cannot use sendfile (the bytes must be encrypted in user space): there the
extension is not offered and the app streams.

It relies on two uvicorn internals (`HttpToolsProtocol._start_asgi_task` and the
cycle's `send`, `transport`, `flow`, `expected_content_length` and `disconnected`),
covered by tests against a real uvicorn.
"""

from __future__ import annotations

import asyncio
import errno
import os
from typing import Any

from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

from mirror.headertimeout import HeaderTimeoutProtocol

EXTENSION = "http.response.zerocopysend"
# One sendfile call sends at most this much; between calls other connections get a turn.
SENDFILE_PIECE = 4 * 1024 * 1024
# Waiting for uvicorn's own buffer (the headers) to reach the socket before the body.
_FLUSH_POLL = 0.001
_FLUSH_TRIES = 30_000
_GONE = (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN, errno.ESHUTDOWN)


class SendfileProtocol(HeaderTimeoutProtocol):
    """uvicorn's httptools protocol (with the request-head deadline and limit of
    `HeaderTimeoutProtocol`) and `http.response.zerocopysend` on plain TCP."""

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        sock = self.transport.get_extra_info("socket")
        if self.transport.get_extra_info("sslcontext") is None and sock is not None:
            extensions = cycle.scope.setdefault("extensions", {})
            extensions[EXTENSION] = {}
            server_send = cycle.send

            async def send(message: Any) -> None:
                if message["type"] == EXTENSION:
                    await _zero_copy(cycle, server_send, sock, message)
                else:
                    await server_send(message)

            cycle.send = send  # type: ignore[method-assign]
        super()._start_asgi_task(cycle, app)


async def _zero_copy(
    cycle: RequestResponseCycle, server_send: Any, sock: Any, message: Any
) -> None:
    if cycle.disconnected:
        return
    if not cycle.response_started or cycle.response_complete:
        raise RuntimeError(f"{EXTENSION} sent outside a response body")
    if cycle.chunked_encoding:
        raise RuntimeError(f"{EXTENSION} needs a Content-Length response")
    more = bool(message.get("more_body", False))
    file = message["file"]
    offset = int(message.get("offset") or 0)
    count = message.get("count")
    if count is None:
        count = os.fstat(file.fileno()).st_size - offset
    if count > cycle.expected_content_length:
        raise RuntimeError("Response content longer than Content-Length")
    if cycle.scope["method"] != "HEAD" and count > 0:
        try:
            await _flushed(cycle)
            await _sendfile(cycle, sock, file.fileno(), offset, count)
        except OSError as exc:
            if exc.errno not in _GONE:
                raise
            # The client went away: as uvicorn does, stop sending without an error.
            cycle.disconnected = True
            cycle.transport.close()
            return
    cycle.expected_content_length -= count
    # uvicorn ends the body itself (keep-alive or close, its response bookkeeping).
    await server_send({"type": "http.response.body", "body": b"", "more_body": more})


async def _flushed(cycle: RequestResponseCycle) -> None:
    """Until uvicorn's write buffer (the headers, any earlier body) is on the socket."""
    for _ in range(_FLUSH_TRIES):
        if cycle.transport.get_write_buffer_size() == 0:
            return
        if cycle.disconnected or cycle.transport.is_closing():
            raise ConnectionResetError(errno.ECONNRESET, "connection closed")
        await asyncio.sleep(_FLUSH_POLL)
    raise TimeoutError("the response headers did not leave the server's buffer")


async def _sendfile(
    cycle: RequestResponseCycle, sock: Any, fd: int, offset: int, count: int
) -> None:
    """Send `count` bytes of `fd` from `offset` through a descriptor of our own for the
    connection's socket. uvicorn closes its descriptor when the client goes, during any
    of the waits below, and the number can be given to another connection or file at
    once: a `sendfile` to it would then send this blob there. The duplicate is taken
    with no wait since the connection was last seen open, and the connection is checked
    again after every wait."""
    loop = asyncio.get_running_loop()
    _check_open(cycle, sock)
    own = os.dup(sock.fileno())
    try:
        while count > 0:
            try:
                sent = os.sendfile(own, fd, offset, min(count, SENDFILE_PIECE))
            except BlockingIOError:
                await _writable(loop, own)
            else:
                if sent == 0:
                    raise OSError(errno.EIO, "file ended before its Content-Length was sent")
                offset += sent
                count -= sent
                await asyncio.sleep(0)
            _check_open(cycle, sock)
    finally:
        os.close(own)


def _check_open(cycle: RequestResponseCycle, sock: Any) -> None:
    if cycle.disconnected or cycle.transport.is_closing() or sock.fileno() < 0:
        raise ConnectionResetError(errno.ECONNRESET, "connection closed")


async def _writable(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_writer(fd, wake)
    try:
        await ready
    finally:
        loop.remove_writer(fd)
