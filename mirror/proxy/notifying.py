"""Notifications emitted around the repository views, never inside handlers.

`NotifyingResolver` wraps the app's resolver: each request's views come wrapped in a
`NotifyingView`, which calls the inner view and, once the store operation succeeded and
before the handler builds its response, queues the event (registry:2's bridge):

| operation | event |
|---|---|
| manifest GET / HEAD (stored or pulled through) | pull |
| manifest PUT | push |
| manifest DELETE by digest / by tag | delete (digest / tag) |
| upload finished (chunked or monolithic) | push (blob) |
| mount with `from` | mount |
| blob GET / HEAD (a range, a download in progress too) | pull (blob) |
| blob DELETE | delete (blob) |

The repository named is the view's, the stored (canonical) name. The request's record
comes from its ASGI scope (`bind_scope`, one of the app's request wrappers, makes it
available to the resolver) and its id from the request edge; the actor is the
authenticated user that access control leaves in the scope's state, as
``"mirror.user"`` (a name) or ``"grant"`` (a `mirror.auth.access.Grant`, whose ``user``
is the name), read when the first event is built, so after the request was authorised.
Emitting never raises (`mirror.events.dispatcher`).
"""

from __future__ import annotations

from collections.abc import AsyncIterable
from contextvars import ContextVar

from starlette.types import ASGIApp, Receive, Scope, Send

from mirror import requestid
from mirror.digests import Digest
from mirror.events.builder import RequestContext, request_record
from mirror.events.envelope import ActorRecord
from mirror.events.notifier import Notifier, RequestNotifier
from mirror.proxy.edge import request_id_of
from mirror.store.blobs import BlobInfo
from mirror.store.uploads import Uploads, UploadStatus
from mirror.store.view import (
    BlobContent,
    BlobHead,
    ManifestHeadResult,
    ManifestResult,
    RepositoryView,
    Resolved,
    Resolver,
    TagsResult,
)
from mirror.types import Descriptor, Manifest, Reference

USER_KEYS = ("mirror.user", "grant")

_scope: ContextVar[Scope | None] = ContextVar("mirror_request_scope", default=None)


def bind_scope(app: ASGIApp) -> ASGIApp:
    """A request wrapper making the request's scope available to `NotifyingResolver`."""

    async def bound(scope: Scope, receive: Receive, send: Send) -> None:
        token = _scope.set(scope)
        try:
            await app(scope, receive, send)
        finally:
            _scope.reset(token)

    return bound


def actor_of(scope: Scope) -> ActorRecord:
    state = scope.get("state")
    if not isinstance(state, dict):
        return ActorRecord()
    for key in USER_KEYS:
        user = state.get(key)
        if user is not None and not isinstance(user, str):
            user = getattr(user, "user", None)
        if isinstance(user, str) and user:
            return ActorRecord(user)
    return ActorRecord()


def _base_url(scope: Scope, configured: str) -> str:
    if configured:
        return configured.rstrip("/")
    host = next(
        (bytes(v).decode("latin-1") for k, v in scope.get("headers") or () if k == b"host"), ""
    )
    return f"{scope.get('scheme', 'http')}://{host}" if host else ""


class RequestEvents:
    """The events of one request; its notifier is made at the first event."""

    def __init__(self, notifier: Notifier, scope: Scope, base_url: str) -> None:
        self._notifier = notifier
        self._scope = scope
        self._base_url = base_url
        self._made: RequestNotifier | None = None

    @property
    def emit(self) -> RequestNotifier:
        if self._made is None:
            scope = self._scope
            rid = request_id_of(scope) or requestid.current() or requestid.new()
            ctx = RequestContext(
                request_record(scope, rid), actor_of(scope), _base_url(scope, self._base_url)
            )
            self._made = self._notifier.for_request(ctx)
        return self._made


class NotifyingResolver:
    def __init__(self, inner: Resolver, notifier: Notifier, *, base_url: str = "") -> None:
        self.inner = inner
        self.notifier = notifier
        self.base_url = base_url

    def resolve(self, name: str, namespace: str | None) -> Resolved:
        resolved = self.inner.resolve(name, namespace)
        scope = _scope.get()
        if scope is None or not self.notifier.active:
            return resolved
        events = RequestEvents(self.notifier, scope, self.base_url)
        return Resolved(NotifyingView(resolved.view, events), resolved.headers)


def _tag(reference: Reference) -> str:
    return reference.tag or ""


class NotifyingView:
    """A `RepositoryView` that emits the events of what its inner view did."""

    def __init__(self, inner: RepositoryView, events: RequestEvents) -> None:
        self.inner = inner
        self.name = inner.name
        self._events = events

    async def get_manifest(self, reference: Reference) -> ManifestResult:
        result = await self.inner.get_manifest(reference)
        await self._events.emit.manifest_pulled(self.name, result.manifest, _tag(reference))
        return result

    async def head_manifest(self, reference: Reference) -> ManifestHeadResult:
        result = await self.inner.head_manifest(reference)
        await self._events.emit.manifest_pulled(self.name, result.descriptor, _tag(reference))
        return result

    async def put_manifest(
        self, reference: Reference, raw: bytes, content_type: str | None
    ) -> Manifest:
        manifest = await self.inner.put_manifest(reference, raw, content_type)
        await self._events.emit.manifest_pushed(self.name, manifest, _tag(reference))
        return manifest

    async def delete_manifest(self, reference: Reference) -> None:
        await self.inner.delete_manifest(reference)
        if reference.digest is not None:
            await self._events.emit.manifest_deleted(self.name, reference.digest)
        else:
            await self._events.emit.tag_deleted(self.name, _tag(reference))

    async def blob(self, digest: Digest) -> BlobContent:
        content = await self.inner.blob(digest)
        await self._events.emit.blob_pulled(self.name, digest, content.size)
        return content

    async def blob_info(self, digest: Digest) -> BlobHead:
        head = await self.inner.blob_info(digest)
        await self._events.emit.blob_pulled(self.name, digest, head.size)
        return head

    async def delete_blob(self, digest: Digest) -> None:
        await self.inner.delete_blob(digest)
        await self._events.emit.blob_deleted(self.name, digest)

    async def tags(self) -> TagsResult:
        return await self.inner.tags()

    async def referrers(self, subject: Digest, artifact_type: str | None) -> list[Descriptor]:
        return await self.inner.referrers(subject, artifact_type)

    def uploads(self) -> Uploads:
        return NotifyingUploads(self.inner.uploads(), self.name, self._events)

    async def mount(self, digest: Digest, source: str | None) -> BlobInfo | None:
        info = await self.inner.mount(digest, source)
        if info is not None and source is not None:
            await self._events.emit.blob_mounted(self.name, digest, info.size, source)
        return info


class NotifyingUploads:
    """Upload sessions whose finish emits the pushed blob's event."""

    def __init__(self, inner: Uploads, repository: str, events: RequestEvents) -> None:
        self.inner = inner
        self.repository = repository
        self._events = events

    async def start(self) -> UploadStatus:
        return await self.inner.start()

    async def status(self, upload_id: str) -> UploadStatus:
        return await self.inner.status(upload_id)

    async def append(
        self,
        upload_id: str,
        body: AsyncIterable[bytes],
        *,
        start: int | None = None,
        length: int | None = None,
    ) -> UploadStatus:
        return await self.inner.append(upload_id, body, start=start, length=length)

    async def finish(
        self,
        upload_id: str,
        digest: Digest,
        body: AsyncIterable[bytes] | None = None,
        *,
        length: int | None = None,
    ) -> BlobInfo:
        info = await self.inner.finish(upload_id, digest, body, length=length)
        await self._events.emit.blob_pushed(self.repository, info.digest, info.size)
        return info

    async def cancel(self, upload_id: str) -> None:
        await self.inner.cancel(upload_id)
