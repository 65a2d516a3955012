"""A loopback TCP proxy in front of an object-store emulator that injects faults.

Modes (switched live with `set`; a switch cuts the connections open so far, so pooled
keep-alive connections meet the new mode at their next request):

- ``pass``: forward both ways.
- ``refuse``: stop listening, so connecting fails (connection refused).
- ``stall``: accept and read, never answer (the client's timeouts must fire).
- ``slowdown``: answer every request 503 with S3's SlowDown error (the status is what a
  driver reads, so the same answer stands for Azure's ServerBusy).
- ``error``: answer every request 500 InternalError.

It runs on the test's event loop, which keeps running while the test awaits the driver.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Literal

Mode = Literal["pass", "refuse", "stall", "slowdown", "error"]

_ANSWERS = {
    "slowdown": (
        "503 Slow Down",
        "<?xml version='1.0' encoding='UTF-8'?><Error><Code>SlowDown</Code>"
        "<Message>Please reduce your request rate.</Message></Error>",
    ),
    "error": (
        "500 Internal Server Error",
        "<?xml version='1.0' encoding='UTF-8'?><Error><Code>InternalError</Code>"
        "<Message>We encountered an internal error. Please try again.</Message></Error>",
    ),
}


class FaultProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.mode: Mode = "pass"
        self.port = 0
        self.requests_answered = 0  # requests answered by the proxy itself (faults)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def set(self, mode: Mode) -> None:
        """Switch to `mode`, cutting every open connection."""
        self.mode = mode
        await self._cut()
        if mode == "refuse" and self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        elif mode != "refuse" and self._server is None:
            await self.start()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        await self._cut()

    async def _cut(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        # Aborted transports end every connection task soon; cancelling them instead would
        # make asyncio log the cancellation as an error of the server's callback.
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=5)
        self._writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        ends = [writer]
        try:
            mode = self.mode
            if mode == "stall":
                while await reader.read(65536):
                    pass
            elif mode in _ANSWERS:
                await self._answer(reader, writer, *_ANSWERS[mode])
            else:
                up_reader, up_writer = await asyncio.open_connection(*self.target)
                ends.append(up_writer)
                self._writers.add(up_writer)
                await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer))
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            for end in ends:
                end.transport.abort()
                self._writers.discard(end)
            self._tasks.discard(task)

    async def _answer(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, status: str, body: str
    ) -> None:
        await reader.readuntil(b"\r\n\r\n")
        payload = body.encode()
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Type: application/xml\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
            + payload
        )
        await writer.drain()
        self.requests_answered += 1
        # Read what the client still sends (a request body) for a moment, so closing does
        # not reset the connection before it has read the answer.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):
                while await reader.read(65536):
                    pass


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.transport.abort()
