"""`HeaderTimeoutProtocol` (uvicorn with a deadline and a size limit for request heads),
with the deadline shortened: a slow head is cut, a response under way never is, and a
kept-alive connection gets a new deadline with each request."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from starlette.types import Receive, Scope, Send

from mirror import headertimeout
from mirror.headertimeout import HeaderTimeoutProtocol
from tests.support.threadserver import serving_in_thread

DEADLINE = 0.5


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """`/slow` streams for three deadlines; anything else answers at once."""
    assert scope["type"] == "http"
    slow = scope["path"] == "/slow"
    await send({"type": "http.response.start", "status": 200, "headers": []})
    for _ in range(6 if slow else 0):
        await send({"type": "http.response.body", "body": b"x", "more_body": True})
        await asyncio.sleep(DEADLINE / 2)
    await send({"type": "http.response.body", "body": b"done"})


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, int]]:
    monkeypatch.setattr(headertimeout, "HEADER_TIMEOUT", DEADLINE)
    with serving_in_thread(app, http=HeaderTimeoutProtocol) as url:
        parts = urlsplit(url)
        assert parts.hostname is not None and parts.port is not None
        yield parts.hostname, parts.port


def closed_within(sock: socket.socket, seconds: float) -> bytes:
    """What the server sent before it closed the connection (fails if it did not)."""
    sock.settimeout(seconds)
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def test_a_slow_head_is_cut_at_the_deadline(server: tuple[str, int]) -> None:
    with socket.create_connection(server) as silent, socket.create_connection(server) as slow:
        slow.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        assert closed_within(slow, 5) == b""
        assert closed_within(silent, 5) == b""
        assert DEADLINE * 0.8 <= time.monotonic() - started < DEADLINE + 2


def test_a_response_under_way_is_never_cut(server: tuple[str, int]) -> None:
    """The next request's head, pipelined half-way during a long download, waits."""
    with socket.create_connection(server) as sock:
        sock.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\n")
        time.sleep(DEADLINE * 2)
        sock.sendall(b"Host: x\r\nConnection: close\r\n\r\n")
        received = closed_within(sock, 10)
    assert received.count(b"HTTP/1.1 200") == 2 and received.count(b"done") == 2


def test_each_request_on_a_kept_alive_connection_gets_its_deadline(
    server: tuple[str, int],
) -> None:
    with socket.create_connection(server) as sock:
        for _ in range(3):  # longer than one deadline in all
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            sock.settimeout(5)
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
            time.sleep(DEADLINE / 2)
        sock.sendall(b"GET / HTTP/1.1\r\n")
        assert closed_within(sock, 5) == b""


def test_a_head_past_the_limit_is_431(
    server: tuple[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(headertimeout, "HEAD_LIMIT", 4096)
    with socket.create_connection(server) as sock:
        try:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"b" * 100_000)
        except OSError:
            pass
        received = closed_within(sock, 5)
    assert received.startswith(b"HTTP/1.1 431 ")
