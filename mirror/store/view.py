"""What the API front end asks of a repository, whoever serves it.

`RepositoryView` is the one seam between the HTTP handlers and the content: the standalone
registry serves it from the store (`LocalView`), the pull-through cache serves it from the
store and an upstream. Results carry an optional `warning` (e.g. served stale because the
upstream is down) that the front end turns into a `Warning: 299` header.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from mirror.digests import Digest
from mirror.errors import ReadOnly
from mirror.store.blobs import BlobInfo
from mirror.store.repo_blobs import RepositoryBlobs
from mirror.store.repository import Repository
from mirror.store.store import Store
from mirror.store.uploads import Uploads, UploadStore
from mirror.types import Descriptor, Manifest, Reference, validate_name

K = TypeVar("K")
V = TypeVar("V")

# open(start, end): a stream of bytes start..end-1 that the caller closes (it may run on
# past `end`). A blob still downloading ends the stream only once those bytes are verified.
Opener = Callable[[int, int], Awaitable[AsyncGenerator[bytes, None]]]


@dataclass(frozen=True, slots=True)
class BlobContent:
    """A blob ready to send: its size, and either a local file or a stream of a range."""

    digest: Digest
    size: int
    open: Opener
    local_path: str | None = None
    warning: str | None = None
    downloading: bool = False  # streamed from an upstream download still in progress


@dataclass(frozen=True, slots=True)
class BlobHead:
    digest: Digest
    size: int
    warning: str | None = None


@dataclass(frozen=True, slots=True)
class ManifestResult:
    manifest: Manifest
    warning: str | None = None


@dataclass(frozen=True, slots=True)
class ManifestHeadResult:
    descriptor: Descriptor
    warning: str | None = None


@dataclass(frozen=True, slots=True)
class TagsResult:
    tags: list[str]
    warning: str | None = None


class RepositoryView(Protocol):
    name: str

    async def get_manifest(self, reference: Reference) -> ManifestResult:
        """The manifest; raise ManifestUnknown (or Unavailable/TooManyRequests upstream)."""
        ...

    async def head_manifest(self, reference: Reference) -> ManifestHeadResult:
        """Digest, media type and size without necessarily fetching the body."""
        ...

    async def put_manifest(
        self, reference: Reference, raw: bytes, content_type: str | None
    ) -> Manifest:
        """Store a pushed manifest; raise Denied where pushes are not accepted."""
        ...

    async def delete_manifest(self, reference: Reference) -> None: ...

    async def blob(self, digest: Digest) -> BlobContent:
        """A readable blob; raise BlobUnknown."""
        ...

    async def blob_info(self, digest: Digest) -> BlobHead:
        """What a HEAD tells (without downloading anything); raise BlobUnknown."""
        ...

    async def delete_blob(self, digest: Digest) -> None: ...

    async def tags(self) -> TagsResult: ...

    async def referrers(self, subject: Digest, artifact_type: str | None) -> list[Descriptor]: ...

    def uploads(self) -> Uploads:
        """Upload sessions; raise Denied (or ReadOnly) where pushes are not accepted."""
        ...

    async def mount(self, digest: Digest, source: str | None) -> BlobInfo | None:
        """Link a blob that repository `source` has; None when it cannot be mounted (no
        `source`, as in registry:2, or not there), and the client uploads it instead."""
        ...


class LocalView:
    """A repository served from the store alone (the standalone registry)."""

    def __init__(self, repository: Repository, *, read_only: bool = False) -> None:
        self.repository = repository
        self.name = repository.name
        self.read_only = read_only

    def _writable(self) -> None:
        if self.read_only:
            raise ReadOnly("the registry is in read-only mode")

    async def get_manifest(self, reference: Reference) -> ManifestResult:
        return ManifestResult(await self.repository.get_manifest(reference))

    async def head_manifest(self, reference: Reference) -> ManifestHeadResult:
        manifest = await self.repository.get_manifest(reference)
        return ManifestHeadResult(manifest.descriptor())

    async def put_manifest(
        self, reference: Reference, raw: bytes, content_type: str | None
    ) -> Manifest:
        self._writable()
        return await self.repository.put_manifest(reference, raw, content_type)

    async def delete_manifest(self, reference: Reference) -> None:
        self._writable()
        await self.repository.delete_manifest(reference)

    async def blob(self, digest: Digest) -> BlobContent:
        blobs = self.repository.blobs
        info = await blobs.stat(digest)
        return BlobContent(
            digest=digest,
            size=info.size,
            open=lambda start, _end: blobs.store.open(digest, start),
            local_path=blobs.store.local_path(digest),
        )

    async def blob_info(self, digest: Digest) -> BlobHead:
        info = await self.repository.blobs.stat(digest)
        return BlobHead(digest, info.size)

    async def delete_blob(self, digest: Digest) -> None:
        self._writable()
        await self.repository.delete_blob(digest)

    async def tags(self) -> TagsResult:
        return TagsResult(await self.repository.tags.all())

    async def referrers(self, subject: Digest, artifact_type: str | None) -> list[Descriptor]:
        return await self.repository.referrers(subject, artifact_type)

    def uploads(self) -> UploadStore:
        self._writable()
        return self.repository.uploads

    async def mount(self, digest: Digest, source: str | None) -> BlobInfo | None:
        self._writable()
        if source is None:
            return None
        blobs = self.repository.blobs
        return await blobs.mount(digest, RepositoryBlobs(source, blobs.store))


@dataclass(frozen=True, slots=True)
class Resolved:
    """The repository a request names, and headers to add to its response."""

    view: RepositoryView
    headers: tuple[tuple[str, str], ...] = ()


class Resolver(Protocol):
    def resolve(self, name: str, namespace: str | None) -> Resolved:
        """Map a requested name (and containerd's `ns`) to a repository view.

        Raises NameInvalid for a malformed name and NameUnknown for a namespace that is
        not configured.
        """
        ...


class LocalResolver:
    """Every name is a local repository (the standalone registry)."""

    def __init__(self, store: Store, *, read_only: bool = False) -> None:
        self.store = store
        self.read_only = read_only
        self._known: dict[str, Resolved] = {}

    def resolve(self, name: str, namespace: str | None) -> Resolved:
        found = self._known.get(name)
        if found is None:
            validate_name(name)
            found = Resolved(LocalView(self.store.repository(name), read_only=self.read_only))
            remember(self._known, name, found)
        return found


RESOLVED_LIMIT = 8192


def remember(known: dict[K, V], key: K, value: V) -> None:
    """Keep a resolution (views hold no per-request state); bounded by RESOLVED_LIMIT."""
    if len(known) >= RESOLVED_LIMIT:
        known.clear()
    known[key] = value
