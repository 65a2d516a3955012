"""HTTP/1.1 over a plain socket: requests sent byte by byte, one connection kept open.

For tests about the connection itself (keep-alive, early answers, malformed requests)
that a client library would hide or refuse to send.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

_STATUS = re.compile(rb"^HTTP/1\.[01] (\d{3})")


class ConnectionClosed(Exception):
    """The server closed the connection before a whole response arrived."""


@dataclass(frozen=True, slots=True)
class RawResponse:
    status: int
    headers: dict[str, str]  # lower-cased names; a repeated name keeps its last value
    body: bytes

    @property
    def closes(self) -> bool:
        """The server said it closes the connection after this response."""
        return self.headers.get("connection", "").lower() == "close"


class RawConnection:
    """One TCP connection to `url`'s host; every read and write bounded by `timeout`."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        self.host = parts.netloc
        self.sock = socket.create_connection((parts.hostname, parts.port or 80), timeout=timeout)
        self._buffer = b""

    def __enter__(self) -> RawConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def head(self, method: str, target: str, headers: dict[str, str] | None = None) -> bytes:
        """The request line and headers (with Host) of a request."""
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host}"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def request(
        self, method: str, target: str, headers: dict[str, str] | None = None, body: bytes = b""
    ) -> RawResponse:
        headers = {"Content-Length": str(len(body)), **(headers or {})}
        self.send(self.head(method, target, headers) + body)
        return self.response(head=method == "HEAD")

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionClosed(f"EOF after {len(self._buffer)} bytes of a response")
        self._buffer += chunk

    def response(self, *, head: bool = False) -> RawResponse:
        """Read one response (framed by Content-Length; none on HEAD)."""
        while b"\r\n\r\n" not in self._buffer:
            self._fill()
        raw_head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        lines = raw_head.split(b"\r\n")
        found = _STATUS.match(lines[0])
        if found is None:
            raise AssertionError(f"not an HTTP response: {lines[0][:100]!r}")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.decode("latin-1").strip().lower()] = value.decode("latin-1").strip()
        length = 0 if head else int(headers.get("content-length", "0"))
        while len(self._buffer) < length:
            self._fill()
        body, self._buffer = self._buffer[:length], self._buffer[length:]
        return RawResponse(int(found.group(1)), headers, body)

    def closed_by_server(self) -> bool:
        """True once the server has closed its side (reads end), within the timeout."""
        try:
            while True:
                self._fill()
        except ConnectionClosed:
            return True
        except OSError:
            return True  # a reset is a close too
