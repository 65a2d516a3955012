"""Early answers to requests whose body was not read: drain a little of it, or close.

Handlers often answer before they read the request body: a 416 for a chunk out of order,
a 404 for an unknown upload, a 405, any error raised while checking the request. On
HTTP/1.1 the unread bytes stand between this response and the client's next request.
uvicorn reads and drops them; granian (hyper) closes the connection after the response
without saying so, and a client that sends its next request on the kept-alive
connection gets EOF (the OCI conformance suite's PATCH tests did, on a loaded machine).

So before a response starts, the rest of the body is read and dropped when it is small
and arrives soon (the connection stays usable); otherwise the response says
`Connection: close`, and the client opens a new connection for its next request.
"""

from __future__ import annotations

import anyio
from starlette.types import Message, Receive, Scope, Send

from mirror.proxy.inputs import plain_number

# Reading and dropping this much is cheaper than a new connection; past it, close.
DRAIN_LIMIT = 1024 * 1024
# A client that stops sending its body must not hold the answer back for long.
DRAIN_TIMEOUT = 1.0
_CLOSE = (b"connection", b"close")


class RequestBody:
    """Watches one request's body messages, so the response can tell whether it was read.
    `headers` are the request's, by name.

    `receive` replaces the server's receive for the app; `guard(send)` wraps the server's
    send so that the response start first settles the unread body (`settle`).
    """

    def __init__(self, headers: dict[bytes, bytes], receive: Receive) -> None:
        self._receive = receive
        self.received = 0
        length = headers.get(b"content-length")
        self.declared = None if length is None else plain_number(length.decode("latin-1"))
        self.continue_expected = headers.get(b"expect", b"").lower() == b"100-continue"
        # No body framing means no body: nothing is received, so nothing can be left over.
        self.complete = b"transfer-encoding" not in headers and not self.declared

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if not message.get("more_body", False):
                self.complete = True
        elif message["type"] == "http.disconnect":
            self.complete = True  # the connection is gone; no next request can follow
        return message

    async def settle(self) -> bool:
        """Read and drop what is left of the body, within DRAIN_LIMIT and DRAIN_TIMEOUT.

        True when the body has been read to its end (the connection can carry another
        request), False when the connection must be closed after the response. Never
        raises; calls the server's receive only while the body is incomplete (a server's
        receive after the body's end would wait for the client to disconnect).
        """
        if self.complete:
            return True
        if self.continue_expected:
            # The client waits for "100 Continue" before it sends the body: reading would
            # ask for a body nobody will use.
            return False
        limit = self.received + DRAIN_LIMIT
        if self.declared is not None and self.declared > limit:
            return False
        try:
            with anyio.move_on_after(DRAIN_TIMEOUT):
                while not self.complete and self.received <= limit:
                    await self.receive()
        except Exception:
            return False  # whatever broke the read, this connection carries nothing more
        return self.complete

    def guard(self, send: Send) -> Send:
        """`send`, with `Connection: close` added to a response whose request body is
        left unread."""

        async def guarded(message: Message) -> None:
            if message["type"] == "http.response.start" and not await self.settle():
                headers = list(message.get("headers", ()))
                if _CLOSE not in headers:
                    message = {**message, "headers": [*headers, _CLOSE]}
            await send(message)

        return guarded


def watch(scope: Scope, receive: Receive, send: Send) -> tuple[Receive, Send]:
    """The receive and send an app should use so that early answers leave the connection
    usable or closed (HTTP/1.x; an HTTP/2 stream's unread body costs no other request).
    A request without a body keeps the server's own (nothing can be left unread)."""
    if scope.get("http_version", "1.1").startswith("2"):
        return receive, send
    headers = dict(scope.get("headers", ()))  # servers refuse repeated framing headers
    if b"transfer-encoding" not in headers and headers.get(b"content-length", b"0") == b"0":
        return receive, send
    body = RequestBody(headers, receive)
    return body.receive, body.guard(send)
