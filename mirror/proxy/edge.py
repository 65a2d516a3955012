"""The outermost ASGI layer of a request: its id, and its access-log line.

`RequestEdge` takes the client's ``X-Request-Id`` when it is sane (else makes one),
binds it for the request (`mirror.requestid`: every log line, every upstream request
the request causes carries it), puts it in ``scope["state"]["mirror.request_id"]`` and
echoes it in the response. With `access_log` it writes one `mirror.access` line per
request once the response is sent (or the client went away), in the request's context.

It is idempotent: an edge inside another (the server wraps whatever app it serves, the
app wraps itself for in-process use) finds the id already there and only passes on.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mirror import requestid

access = logging.getLogger("mirror.access")

STATE_KEY = "mirror.request_id"
_HEADER = requestid.HEADER.lower().encode()


def request_id_of(scope: Scope) -> str | None:
    """The id the edge gave this request (None outside an edge)."""
    state = scope.get("state")
    found = state.get(STATE_KEY) if isinstance(state, dict) else None
    return found if isinstance(found, str) else None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _peer(scope: Scope) -> str:
    client = scope.get("client")
    if not client:
        return "-"
    host, port = client[0], client[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


class RequestEdge:
    def __init__(self, app: ASGIApp, *, access_log: bool = False) -> None:
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or request_id_of(scope) is not None:
            await self.app(scope, receive, send)
            return
        rid = requestid.sane(_header(scope, _HEADER)) or requestid.new()
        state = scope.get("state")
        if not isinstance(state, dict):
            state = scope["state"] = {}
        state[STATE_KEY] = rid
        token = requestid.bind(rid)
        started = time.perf_counter()
        sent: dict[str, Any] = {"status": 0, "bytes": 0}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                sent["status"] = message["status"]
                headers = [
                    (key, value)
                    for key, value in message.get("headers", ())
                    if key.lower() != _HEADER
                ]
                headers.append((_HEADER, rid.encode()))
                sent["length"] = next(
                    (value for key, value in headers if key.lower() == b"content-length"), b"0"
                )
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body":
                sent["bytes"] += len(message.get("body", b""))
            elif message["type"] == "http.response.zerocopysend":
                sent["bytes"] += int(message.get("count") or 0)
            elif message["type"] == "http.response.pathsend":
                length = bytes(sent.get("length", b"0"))
                sent["bytes"] += int(length) if length.isdigit() else 0
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if self.access_log:
                status = sent["status"] or 499  # nothing was answered: the client left
                self._log(scope, status, sent["bytes"], time.perf_counter() - started)
            requestid.unbind(token)

    @staticmethod
    def _log(scope: Scope, status: int, size: int, seconds: float) -> None:
        method = scope.get("method", "")
        path = scope.get("path", "")
        query = scope.get("query_string") or b""
        target = f"{path}?{query.decode('latin-1')}" if query else path
        protocol = f"HTTP/{scope.get('http_version', '1.1')}"
        agent = _header(scope, b"user-agent") or "-"
        access.info(
            '%s - "%s %s %s" %d %d %.3fs "%s"',
            _peer(scope),
            method,
            target,
            protocol,
            status,
            size,
            seconds,
            agent,
            extra={
                "remote_addr": _peer(scope),
                "method": method,
                "uri": target,
                "protocol": protocol,
                "status": status,
                "bytes": size,
                "duration": round(seconds, 6),
                "user_agent": agent,
            },
        )
