"""Building events the way registry:2's bridge does, for the stores' wrappers to emit.

One `EventBuilder` per process holds what every event shares (the source record, whether
manifest events list their references); a `RequestContext` per request holds what the
events of one request share (its request record, the actor, the base URL the `url`
fields start with). Which store operation produces which event is the wrappers'
business; the methods here are named after the reference's listener callbacks.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mirror.digests import Digest
from mirror.events.envelope import (
    ACTION_DELETE,
    ACTION_MOUNT,
    ACTION_PULL,
    ACTION_PUSH,
    BLOB_MEDIA_TYPE,
    ActorRecord,
    Event,
    RequestRecord,
    SourceRecord,
    Target,
)
from mirror.types import Descriptor, Manifest


@dataclass(frozen=True, slots=True)
class RequestContext:
    """What the events caused by one request share.

    `base_url` is the registry's external base (``http.host`` when configured, else the
    request's scheme and Host), without a trailing slash; the `url` fields are built on
    it. Empty leaves them out.
    """

    request: RequestRecord
    actor: ActorRecord = field(default_factory=ActorRecord)
    base_url: str = ""


def _header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return ""


def client_addr(scope: Mapping[str, Any]) -> str:
    """The client's address as the reference reports it: the first ``X-Forwarded-For``
    entry, else ``X-Real-Ip``, else the peer's ``ip:port``."""
    headers = scope.get("headers") or ()
    forwarded = _header(headers, b"x-forwarded-for")
    if forwarded:
        first = forwarded.split(",", 1)[0].strip()
        if first:
            return first
    real = _header(headers, b"x-real-ip").strip()
    if real:
        return real
    client = scope.get("client")
    if not client:
        return ""
    host, port = client[0], client[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


def request_record(scope: Mapping[str, Any], request_id: str) -> RequestRecord:
    """The request record of an ASGI HTTP request."""
    headers = scope.get("headers") or ()
    return RequestRecord(
        id=request_id,
        method=str(scope.get("method", "")),
        addr=client_addr(scope),
        host=_header(headers, b"host"),
        useragent=_header(headers, b"user-agent"),
    )


def manifest_references(manifest: Manifest) -> tuple[Descriptor, ...]:
    """What the reference's `Manifest.References()` lists: config then layers for an
    image manifest, the child manifests (with their platforms) for an index."""
    if manifest.is_index:
        return manifest.manifests
    return manifest.blobs


def _new_id() -> str:
    return str(uuid.uuid4())


def _now() -> datetime:
    return datetime.now(UTC)


class EventBuilder:
    """Makes timestamped events with fresh ids; pure (no I/O)."""

    def __init__(
        self,
        source: SourceRecord,
        *,
        include_references: bool = False,
        new_id: Callable[[], str] = _new_id,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.source = source
        self.include_references = include_references
        self._new_id = new_id
        self._clock = clock

    def _event(self, ctx: RequestContext, action: str, target: Target) -> Event:
        return Event(
            id=self._new_id(),
            timestamp=self._clock(),
            action=action,
            target=target,
            request=ctx.request,
            actor=ctx.actor,
            source=self.source,
        )

    @staticmethod
    def _url(ctx: RequestContext, repository: str, kind: str, digest: Digest) -> str:
        if not ctx.base_url:
            return ""
        return f"{ctx.base_url}/v2/{repository}/{kind}/{digest}"

    def _manifest(
        self,
        ctx: RequestContext,
        action: str,
        repository: str,
        manifest: Manifest | Descriptor,
        tag: str,
    ) -> Event:
        if isinstance(manifest, Manifest):
            descriptor = manifest.descriptor()
            references = manifest_references(manifest) if self.include_references else ()
        else:
            # A HEAD answered from a descriptor: the references are not at hand.
            descriptor, references = manifest, ()
        target = Target(
            repository=repository,
            media_type=descriptor.media_type,
            digest=descriptor.digest,
            size=descriptor.size,
            url=self._url(ctx, repository, "manifests", descriptor.digest),
            tag=tag,
            references=references,
        )
        return self._event(ctx, action, target)

    def manifest_pushed(
        self, ctx: RequestContext, repository: str, manifest: Manifest, tag: str = ""
    ) -> Event:
        """A manifest stored by a PUT; `tag` when it was put by tag."""
        return self._manifest(ctx, ACTION_PUSH, repository, manifest, tag)

    def manifest_pulled(
        self,
        ctx: RequestContext,
        repository: str,
        manifest: Manifest | Descriptor,
        tag: str = "",
    ) -> Event:
        """A manifest served (GET or HEAD, from the store or fetched through); `tag`
        when it was asked for by tag. A HEAD that only has the descriptor passes that
        (the event then lists no references)."""
        return self._manifest(ctx, ACTION_PULL, repository, manifest, tag)

    def manifest_deleted(self, ctx: RequestContext, repository: str, digest: Digest) -> Event:
        """A manifest deleted by digest: the target has only repository and digest."""
        return self._event(ctx, ACTION_DELETE, Target(repository=repository, digest=digest))

    def tag_deleted(self, ctx: RequestContext, repository: str, tag: str) -> Event:
        """A tag deleted (DELETE of a manifest by tag): repository and tag only."""
        return self._event(ctx, ACTION_DELETE, Target(repository=repository, tag=tag))

    def _blob(
        self,
        ctx: RequestContext,
        action: str,
        repository: str,
        digest: Digest,
        size: int,
        *,
        media_type: str,
        from_repository: str = "",
    ) -> Event:
        target = Target(
            repository=repository,
            media_type=media_type,
            digest=digest,
            size=size,
            url=self._url(ctx, repository, "blobs", digest),
            from_repository=from_repository,
        )
        return self._event(ctx, action, target)

    def blob_pushed(
        self,
        ctx: RequestContext,
        repository: str,
        digest: Digest,
        size: int,
        media_type: str = BLOB_MEDIA_TYPE,
    ) -> Event:
        """A blob committed by an upload (monolithic or the finishing PUT)."""
        return self._blob(ctx, ACTION_PUSH, repository, digest, size, media_type=media_type)

    def blob_pulled(
        self,
        ctx: RequestContext,
        repository: str,
        digest: Digest,
        size: int,
        media_type: str = BLOB_MEDIA_TYPE,
    ) -> Event:
        """A blob served (GET or HEAD, from the store or fetched through)."""
        return self._blob(ctx, ACTION_PULL, repository, digest, size, media_type=media_type)

    def blob_mounted(
        self,
        ctx: RequestContext,
        repository: str,
        digest: Digest,
        size: int,
        *,
        from_repository: str,
        media_type: str = BLOB_MEDIA_TYPE,
    ) -> Event:
        """A blob linked into `repository` from `from_repository` by a cross-mount."""
        return self._blob(
            ctx,
            ACTION_MOUNT,
            repository,
            digest,
            size,
            media_type=media_type,
            from_repository=from_repository,
        )

    def blob_deleted(self, ctx: RequestContext, repository: str, digest: Digest) -> Event:
        """A blob unlinked from `repository`: repository and digest only."""
        return self._event(ctx, ACTION_DELETE, Target(repository=repository, digest=digest))
