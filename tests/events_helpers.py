"""Shared pieces of the notification tests: events to emit, endpoints on temp dirs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from mirror.digests import Digest
from mirror.events.builder import EventBuilder, RequestContext
from mirror.events.delivery import Endpoint
from mirror.events.dispatcher import Dispatcher
from mirror.events.envelope import Event, RequestRecord, SourceRecord
from mirror.events.setup import EndpointSettings, build_endpoint

BUILDER = EventBuilder(SourceRecord("test-host:5000", "instance-1"))
CTX = RequestContext(
    RequestRecord(id="req-1", method="PUT", addr="127.0.0.1:4000", host="mirror.test"),
    base_url="http://mirror.test",
)


def blob_event(n: int, action: str = "push") -> Event:
    digest = Digest.of(f"blob {n}".encode())
    if action == "pull":
        return BUILDER.blob_pulled(CTX, "library/app", digest, n + 1)
    return BUILDER.blob_pushed(CTX, "library/app", digest, n + 1)


def endpoint(directory: Path, name: str, url: str, **settings: object) -> Endpoint:
    """An endpoint with its local queue under `directory`; fast retries by default."""
    options: dict[str, object] = {"threshold": 3, "backoff": 0.05, **settings}
    return build_endpoint(
        EndpointSettings(name=name, url=url, **options),  # type: ignore[arg-type]
        directory=directory,
    )


def dispatcher(*endpoints: Endpoint) -> Dispatcher:
    return Dispatcher(endpoints, poll_interval=0.05, claim_ttl=2.0)


async def eventually(check: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what or check}")
        await asyncio.sleep(0.01)
