"""Building the dispatcher from plain endpoint settings (registry:2's endpoint keys).

The composition root turns ``notifications.endpoints[]`` into `EndpointSettings` (with
the reference's defaults already applied) and calls `build_dispatcher`; nothing here
reads the configuration object. Each endpoint gets a local queue in a directory of its
own under `directory`, and a Redis stream in front of it when `redis` is given.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis.asyncio as aioredis

from mirror.coordination.failover import Failover
from mirror.events.delivery import Endpoint, EventFilter
from mirror.events.disk_queue import DiskEventQueue
from mirror.events.dispatcher import Dispatcher
from mirror.events.endpoint_queue import EndpointQueue
from mirror.events.redis_queue import RedisEventQueue
from mirror.events.sink import HttpSink

logger = logging.getLogger("mirror.events")

DEFAULT_QUEUE_LIMIT = 100_000


@dataclass(frozen=True, slots=True)
class EndpointSettings:
    """One ``notifications.endpoints[]`` entry; defaults are registry:2's.

    `ignored_media_types` is ``ignoredmediatypes`` and ``ignore.mediatypes`` together;
    `ignored_actions` is ``ignore.actions``. `queue_limit` (the cap) and `batch` (events
    per envelope) are this registry's own.
    """

    name: str
    url: str
    headers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    timeout: float = 1.0
    threshold: int = 10
    backoff: float = 1.0
    ignored_media_types: frozenset[str] = frozenset()
    ignored_actions: frozenset[str] = frozenset()
    disabled: bool = False
    queue_limit: int = DEFAULT_QUEUE_LIMIT
    batch: int = 1


def queue_directory(root: Path, name: str) -> Path:
    """A directory per endpoint name: readable, and distinct for distinct names."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:64].strip("._") or "endpoint"
    return root / f"{slug}-{hashlib.sha256(name.encode()).hexdigest()[:12]}"


def build_endpoint(
    settings: EndpointSettings,
    *,
    directory: Path,
    redis: aioredis.Redis | None = None,
    redis_prefix: str = "mirror:",
    failover: Failover | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Endpoint:
    local = DiskEventQueue(queue_directory(directory, settings.name), limit=settings.queue_limit)
    shared = (
        None
        if redis is None
        else RedisEventQueue(redis, settings.name, prefix=redis_prefix, limit=settings.queue_limit)
    )
    return Endpoint(
        name=settings.name,
        sink=HttpSink(
            settings.url,
            headers=settings.headers,
            timeout=settings.timeout,
            transport=transport,
        ),
        queue=EndpointQueue(local, shared, failover=failover),
        filter=EventFilter(settings.ignored_media_types, settings.ignored_actions),
        threshold=settings.threshold,
        backoff=settings.backoff,
        batch=settings.batch,
    )


def build_dispatcher(
    endpoints: Sequence[EndpointSettings],
    *,
    directory: str | Path,
    redis: aioredis.Redis | None = None,
    redis_prefix: str = "mirror:",
    transport: httpx.AsyncBaseTransport | None = None,
    poll_interval: float = 1.0,
    claim_ttl: float = 10.0,
) -> Dispatcher:
    """A dispatcher for the endpoints that are not `disabled` (not started yet).

    The caller keeps owning `redis`. Raises ValueError for a bad URL, a duplicate name
    or a limit below 1.
    """
    names = [settings.name for settings in endpoints]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"notification endpoint names must be unique: {duplicates}")
    failover = Failover("events") if redis is not None else None
    built: list[Endpoint] = []
    for settings in endpoints:
        if settings.disabled:
            logger.info("notifications to %s: endpoint disabled, skipping", settings.name)
            continue
        built.append(
            build_endpoint(
                settings,
                directory=Path(directory),
                redis=redis,
                redis_prefix=redis_prefix,
                failover=failover,
                transport=transport,
            )
        )
    return Dispatcher(built, poll_interval=poll_interval, claim_ttl=claim_ttl)
