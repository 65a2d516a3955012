"""The debug listener (`http.debug.addr`): `/debug/health` and, when enabled, metrics.

One per server, however many workers: each worker tries to listen on the address and
the first one to bind it serves it (the port is not shared: no SO_REUSEPORT); the others
try again every `retry` seconds, so when that worker dies another one takes over.

It runs in the worker's event loop as a uvicorn server of its own (a well-kept HTTP
implementation; with signal handling left to the worker's main server and logging to
the worker's configuration).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections.abc import Iterator, Mapping

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

logger = logging.getLogger("mirror.debug")


async def _not_found(scope: Scope, receive: Receive, send: Send) -> None:
    body = b"404 page not found\n"
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"19")]
    await send({"type": "http.response.start", "status": 404, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def debug_app(routes: Mapping[str, ASGIApp]) -> ASGIApp:
    """Dispatch by exact path; anything else is 404."""
    table = dict(routes)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await table.get(scope["path"], _not_found)(scope, receive, send)

    return app


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The worker's server owns the signals; this one stops when told to.
        yield


def _bind(host: str, port: int) -> socket.socket | None:
    """A listening socket, or None while someone else (a sibling worker) holds it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            return None
        raise
    sock.setblocking(False)
    return sock


class DebugListener:
    def __init__(
        self,
        app: ASGIApp,
        host: str,
        port: int,
        *,
        retry: float = 5.0,
        what: str = "debug listener",
    ) -> None:
        """`what` names the listener in log lines (the token service uses this too)."""
        self.app = app
        self.what = what
        self.host = host
        self.port = port
        self.retry = retry
        self._task: asyncio.Task[None] | None = None
        self._server: _Server | None = None
        self.serving = asyncio.Event()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self.what)

    async def _run(self) -> None:
        waited = False
        while True:
            try:
                sock = _bind(self.host, self.port)
            except OSError as exc:
                logger.error("%s: cannot listen on %s:%d: %s", self.what, self.host, self.port, exc)
                return
            if sock is not None:
                break
            if not waited:
                logger.debug(
                    "%s: %s:%d is served by another worker", self.what, self.host, self.port
                )
                waited = True
            await asyncio.sleep(self.retry)
        config = uvicorn.Config(
            self.app,
            lifespan="off",
            log_config=None,
            access_log=False,
            http="h11",
            loop="none",
        )
        self._server = _Server(config)
        logger.info("%s on %s:%d", self.what, self.host, self.port)
        self.serving.set()
        try:
            await self._server.serve(sockets=[sock])
        finally:
            sock.close()

    async def aclose(self) -> None:
        if self._task is None:
            return
        if self._server is not None:
            self._server.should_exit = True
            try:
                await asyncio.wait_for(asyncio.shield(self._task), 5.0)
            except TimeoutError:
                pass
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None
