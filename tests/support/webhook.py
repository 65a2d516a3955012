"""A webhook receiver for notification tests: a tiny HTTP/1.1 server on loopback.

It records every request it reads in full (headers, body, the parsed envelope) and
answers `status`. A test can make it fail (`status = 500`), hold its answers (`hold()`:
requests are read and recorded but not answered until `release()`), go away (`stop()`:
the port refuses connections) and come back on the same port (`start()` again).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() when it was read

    @property
    def events(self) -> list[dict[str, Any]]:
        doc = json.loads(self.body)
        events: list[dict[str, Any]] = doc["events"]
        return events


class WebhookReceiver:
    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.requests: list[Received] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._released = asyncio.Event()
        self._released.set()
        self._arrived = asyncio.Event()
        self._down = asyncio.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/events"

    async def start(self) -> str:
        """Listen (on the same port as before, after a stop); return the URL."""
        self._down = asyncio.Event()
        self._server = await asyncio.start_server(
            self._serve, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self.url

    async def stop(self) -> None:
        """Stop listening and cut open connections (answers not sent are lost)."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._down.set()  # held answers give up instead of waiting for a release
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._writers.clear()

    async def __aenter__(self) -> WebhookReceiver:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release()
        await self.stop()

    def hold(self) -> None:
        """Record requests but do not answer them until `release`."""
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    def events(self) -> list[dict[str, Any]]:
        """Every event received, in arrival order (repeats included)."""
        return [event for request in self.requests for event in request.events]

    def unique_events(self) -> list[dict[str, Any]]:
        """Every event once (delivery is at least once: a POST that timed out on the
        sender's side after it arrived here is sent again), in order of first arrival."""
        seen: set[str] = set()
        unique = []
        for event in self.events():
            if event["id"] not in seen:
                seen.add(event["id"])
                unique.append(event)
        return unique

    def ids(self) -> list[str]:
        return [str(event["id"]) for event in self.events()]

    async def wait_for(self, ids: set[str], timeout: float = 10.0) -> None:
        """Wait until every id in `ids` has been received."""
        deadline = time.monotonic() + timeout
        while not ids <= set(self.ids()):
            left = deadline - time.monotonic()
            if left <= 0:
                missing = len(ids - set(self.ids()))
                raise TimeoutError(f"{missing} of {len(ids)} events did not arrive in {timeout}s")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), min(left, 0.1))

    async def wait_for_requests(self, count: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{len(self.requests)} of {count} requests in {timeout}s")
            await asyncio.sleep(0.01)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers: dict[str, str] = {}
                for line in lines[1:]:
                    if line:
                        name, _, value = line.partition(":")
                        key = name.strip().lower()
                        headers[key] = (
                            f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
                        )
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.requests.append(Received(method, path, headers, body, time.monotonic()))
                self._arrived.set()
                down = self._down
                await asyncio.wait(
                    [asyncio.ensure_future(e.wait()) for e in (self._released, down)],
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if down.is_set():
                    return
                writer.write(
                    f"HTTP/1.1 {self.status} X\r\nContent-Length: 0\r\n\r\n".encode("latin-1")
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.transport.abort()
            self._writers.discard(writer)
            self._tasks.discard(task)
