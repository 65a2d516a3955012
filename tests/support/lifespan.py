"""Run an ASGI app's lifespan (startup, then shutdown) around a block of a test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

from starlette.types import ASGIApp


@asynccontextmanager
async def lifespan(app: ASGIApp, timeout: float = 30.0) -> AsyncIterator[None]:
    """Startup before the block, shutdown after it; raises if either fails."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def receive() -> dict[str, Any]:
        return await inbox.get()

    async def send(message: MutableMapping[str, Any]) -> None:
        await outbox.put(dict(message))

    async def run() -> None:
        await app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)

    task = asyncio.create_task(run())
    await inbox.put({"type": "lifespan.startup"})
    started = await asyncio.wait_for(outbox.get(), timeout)
    if started["type"] != "lifespan.startup.complete":
        raise RuntimeError(f"startup failed: {started}")
    try:
        yield
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        stopped = await asyncio.wait_for(outbox.get(), timeout)
        await asyncio.wait_for(task, timeout)
        assert stopped["type"] == "lifespan.shutdown.complete", stopped
