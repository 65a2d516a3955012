"""What the stores' wrappers hold: events of one request, built and emitted in one call.

`Notifier` is per process (builder + dispatcher); `Notifier.for_request(ctx)` gives the
`RequestNotifier` a request's wrappers call after each successful store operation. With
no endpoint configured every call returns at once without building anything.
"""

from __future__ import annotations

from mirror.digests import Digest
from mirror.events.builder import EventBuilder, RequestContext
from mirror.events.dispatcher import Dispatcher
from mirror.events.envelope import BLOB_MEDIA_TYPE
from mirror.types import Descriptor, Manifest


class Notifier:
    def __init__(self, builder: EventBuilder, dispatcher: Dispatcher) -> None:
        self.builder = builder
        self.dispatcher = dispatcher

    @property
    def active(self) -> bool:
        return self.dispatcher.active

    def for_request(self, ctx: RequestContext) -> RequestNotifier:
        return RequestNotifier(self, ctx)


class RequestNotifier:
    """The events of one request. Each method returns once the event is queued for
    every endpoint that wants it; none raises."""

    def __init__(self, notifier: Notifier, ctx: RequestContext) -> None:
        self._builder = notifier.builder
        self._dispatcher = notifier.dispatcher
        self.ctx = ctx

    @property
    def active(self) -> bool:
        return self._dispatcher.active

    async def manifest_pushed(self, repository: str, manifest: Manifest, tag: str = "") -> None:
        if self.active:
            event = self._builder.manifest_pushed(self.ctx, repository, manifest, tag)
            await self._dispatcher.emit(event)

    async def manifest_pulled(
        self, repository: str, manifest: Manifest | Descriptor, tag: str = ""
    ) -> None:
        if self.active:
            event = self._builder.manifest_pulled(self.ctx, repository, manifest, tag)
            await self._dispatcher.emit(event)

    async def manifest_deleted(self, repository: str, digest: Digest) -> None:
        if self.active:
            await self._dispatcher.emit(
                self._builder.manifest_deleted(self.ctx, repository, digest)
            )

    async def tag_deleted(self, repository: str, tag: str) -> None:
        if self.active:
            await self._dispatcher.emit(self._builder.tag_deleted(self.ctx, repository, tag))

    async def blob_pushed(
        self, repository: str, digest: Digest, size: int, media_type: str = BLOB_MEDIA_TYPE
    ) -> None:
        if self.active:
            event = self._builder.blob_pushed(self.ctx, repository, digest, size, media_type)
            await self._dispatcher.emit(event)

    async def blob_pulled(
        self, repository: str, digest: Digest, size: int, media_type: str = BLOB_MEDIA_TYPE
    ) -> None:
        if self.active:
            event = self._builder.blob_pulled(self.ctx, repository, digest, size, media_type)
            await self._dispatcher.emit(event)

    async def blob_mounted(
        self, repository: str, digest: Digest, size: int, from_repository: str
    ) -> None:
        if self.active:
            event = self._builder.blob_mounted(
                self.ctx, repository, digest, size, from_repository=from_repository
            )
            await self._dispatcher.emit(event)

    async def blob_deleted(self, repository: str, digest: Digest) -> None:
        if self.active:
            await self._dispatcher.emit(self._builder.blob_deleted(self.ctx, repository, digest))
