"""The notification event and its envelope, as registry:2 (3.x) puts them on the wire.

Field names, nesting and which fields are left out when empty follow the reference's Go
types: the target embeds an OCI descriptor, so ``mediaType``, ``digest`` and ``size`` are
always present (empty on delete events, as the reference sends them); ``length`` repeats
``size`` and is left out when 0; ``request.id``, ``request.method`` and
``request.useragent`` are always present; everything else is left out when empty. An
event serialises once (compact JSON, keys in the reference's order); the queues store
those bytes, and an envelope is built around stored events without parsing them again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mirror.digests import Digest
from mirror.types import Descriptor

EVENTS_MEDIA_TYPE = "application/vnd.docker.distribution.events.v2+json"

ACTION_PULL = "pull"
ACTION_PUSH = "push"
ACTION_MOUNT = "mount"
ACTION_DELETE = "delete"
ACTIONS = frozenset({ACTION_PULL, ACTION_PUSH, ACTION_MOUNT, ACTION_DELETE})

# What the reference puts in a blob event's target: the store does not know a layer's
# media type, so blobs are octet streams (hence `ignoredmediatypes:
# [application/octet-stream]` in its documentation, to keep only manifest events).
BLOB_MEDIA_TYPE = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class Target:
    """What the event is about: a manifest, a blob, or a tag (delete)."""

    repository: str
    media_type: str = ""
    digest: Digest | None = None
    size: int = 0
    url: str = ""
    tag: str = ""
    from_repository: str = ""
    references: tuple[Descriptor, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": "" if self.digest is None else str(self.digest),
            "size": self.size,
        }
        if self.size:
            out["length"] = self.size
        if self.repository:
            out["repository"] = self.repository
        if self.from_repository:
            out["fromRepository"] = self.from_repository
        if self.url:
            out["url"] = self.url
        if self.tag:
            out["tag"] = self.tag
        if self.references:
            out["references"] = [ref.to_json() for ref in self.references]
        return out


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """The HTTP request that caused the event."""

    id: str
    method: str
    addr: str = ""
    host: str = ""
    useragent: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id}
        if self.addr:
            out["addr"] = self.addr
        if self.host:
            out["host"] = self.host
        out["method"] = self.method
        out["useragent"] = self.useragent
        return out


@dataclass(frozen=True, slots=True)
class ActorRecord:
    """Who initiated the event: the authenticated user's name, empty without auth."""

    name: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name} if self.name else {}


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """The registry node that generated the event: ``host:port`` and an id that changes
    with every start of the process."""

    addr: str = ""
    instance_id: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.addr:
            out["addr"] = self.addr
        if self.instance_id:
            out["instanceID"] = self.instance_id
        return out


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with the fraction's trailing zeros cut, as Go's RFC3339Nano."""
    utc = moment.astimezone(UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += f".{utc.microsecond:06d}".rstrip("0")
    return text + "Z"


@dataclass(frozen=True, slots=True)
class Event:
    """One registry event. `id` is unique per event and is what receivers de-duplicate
    by: a redelivered event carries the same id and the same bytes."""

    id: str
    timestamp: datetime
    action: str
    target: Target
    request: RequestRecord
    actor: ActorRecord = field(default_factory=ActorRecord)
    source: SourceRecord = field(default_factory=SourceRecord)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "timestamp": format_timestamp(self.timestamp),
            "action": self.action,
            "target": self.target.to_json(),
            "request": self.request.to_json(),
            "actor": self.actor.to_json(),
            "source": self.source.to_json(),
        }

    def to_bytes(self) -> bytes:
        """The event as compact JSON, the form the queues store."""
        return json.dumps(self.to_json(), separators=(",", ":"), ensure_ascii=False).encode()


def envelope(events: Sequence[bytes]) -> bytes:
    """``{"events": [...]}`` around events already serialised by `Event.to_bytes`."""
    return b'{"events":[' + b",".join(events) + b"]}"
