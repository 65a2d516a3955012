"""A request's head must arrive within HEADER_TIMEOUT and HEAD_LIMIT, under either server.

granian (hyper) closes a connection whose request head is not complete within its
``header_read_timeout``, and answers 431 to a head of more than 100 header lines or about
512 KiB to 1 MiB; uvicorn has
neither limit, so a client that dribbles header bytes (slowloris), or connects and sends
nothing, held a connection (a descriptor, a protocol object) for ever, and one that sends
header bytes without end grew the worker's memory. `HeaderTimeoutProtocol` is uvicorn's
httptools protocol with both: the deadline is armed when a connection opens and when a
request begins, disarmed when its head is complete. It never cuts a response under way (a
client may pipeline the next request's head during a long download): the deadline then
waits for the response.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEADER_TIMEOUT: Final = 30.0  # seconds; granian's default, set explicitly for both
# Bytes: Go's DefaultMaxHeaderBytes (registry:2's); granian refuses heads a little smaller.
HEAD_LIMIT: Final = 1 << 20
_TOO_LARGE: Final = b"request head too large\n"
_431: Final = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(_TOO_LARGE), _TOO_LARGE)
)


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, closing connections whose headers come too slowly."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_deadline: asyncio.TimerHandle | None = None
        self._head_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return
        super().data_received(data)
        if self._header_deadline is None:  # no head under way (or it just completed)
            self._head_bytes = 0
            return
        # Bytes that did not complete a head were all head. (The chunk that completes a
        # head may carry body bytes too, so a head may pass the limit by that chunk.)
        self._head_bytes += len(data)
        if self._head_bytes > HEAD_LIMIT and not self.transport.is_closing():
            self._disarm_header_deadline()
            self.transport.write(_431)
            self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_header_deadline()

    def on_headers_complete(self) -> None:
        self._disarm_header_deadline()
        super().on_headers_complete()

    def _arm_header_deadline(self) -> None:
        if self._header_deadline is None:
            self._header_deadline = self.loop.call_later(HEADER_TIMEOUT, self._headers_too_slow)

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            self._arm_header_deadline()  # a response is under way: never cut it
            return
        self.transport.close()
