"""SIGTERM in a worker: report not ready, let running requests finish, then cut them.

Both servers stop accepting on SIGTERM and run the lifespan shutdown once their
connections are done; neither tells the app. `GracefulShutdown.start` (lifespan
startup, main thread only) puts a handler in front of the server's own for SIGTERM and
SIGINT that calls the server's after it flips the drain switch (`Probes.drain`: a
keep-alive `/readyz` now answers 503) and starts the drain clock. Requests still running
after `timeout` seconds are cancelled (uvicorn does so too; granian would wait for
them until its kill timeout), so the lifespan shutdown runs: undelivered events stay
queued, downloads get what is left of the drain (`remaining`), leases are released.
Nothing is committed half-way: a cancelled upload or download is not published.

The server's handler still runs: uvicorn's is a Python handler (called by ours);
granian's is the event loop's, which the interpreter's C handler wakes whatever Python
handler is installed.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

logger = logging.getLogger("mirror.shutdown")

SIGNALS = (signal.SIGTERM, signal.SIGINT)
Handler = Callable[[int, FrameType | None], Any] | int | None


class GracefulShutdown:
    def __init__(self, drain: Callable[[], None], timeout: float) -> None:
        """`drain` is called once, on the loop, when a stop signal arrives."""
        self._drain = drain
        self.timeout = timeout
        self._running: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._previous: dict[int, Handler] = {}
        self._deadline: float | None = None
        self._timer: asyncio.TimerHandle | None = None

    @property
    def draining(self) -> bool:
        return self._deadline is not None

    def remaining(self) -> float:
        """Seconds left of the drain (0 when not draining or past it)."""
        if self._deadline is None or self._loop is None:
            return 0.0
        return max(self._deadline - self._loop.time(), 0.0)

    def wrap(self, app: ASGIApp) -> ASGIApp:
        """A request wrapper: the request's task is cut if it outlives the drain."""

        async def tracked(scope: Scope, receive: Receive, send: Send) -> None:
            task = asyncio.current_task()
            if task is None:  # pragma: no cover - ASGI servers run requests in tasks
                await app(scope, receive, send)
                return
            self._running.add(task)
            try:
                await app(scope, receive, send)
            finally:
                self._running.discard(task)

        return tracked

    async def start(self) -> None:
        """Install the signal handlers (in the main thread; elsewhere nothing)."""
        self._loop = asyncio.get_running_loop()
        if threading.current_thread() is not threading.main_thread():
            logger.debug("not in the main thread: SIGTERM is left to the server")
            return
        for sig in SIGNALS:
            self._previous[sig] = signal.signal(sig, self._on_signal)

    async def stop(self) -> None:
        """Put the server's handlers back; stop the drain clock. Idempotent."""
        for sig, previous in self._previous.items():
            signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
        self._previous.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.begin)
        previous = self._previous.get(signum)
        if callable(previous):
            previous(signum, frame)
        elif previous == signal.SIG_DFL and signum == signal.SIGINT:
            raise KeyboardInterrupt

    def begin(self) -> None:
        """Start draining (on the loop). Idempotent."""
        if self._deadline is not None or self._loop is None:
            return
        self._deadline = self._loop.time() + self.timeout
        logger.info(
            "stop signal: draining, %d request(s) running get %.3gs",
            len(self._running),
            self.timeout,
        )
        self._drain()
        self._timer = self._loop.call_later(self.timeout, self._cut)

    def _cut(self) -> None:
        self._timer = None
        if self._running:
            logger.warning(
                "drain timeout: cancelling %d request(s) still running", len(self._running)
            )
        for task in list(self._running):
            task.cancel()
