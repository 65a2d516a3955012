"""`Registry`: the distribution API of one registry host, for a client.

A thin, typed layer over `registryhttp.DistributionClient` (the pull-through upstream's
client: one transport, one auth implementation): it picks the scheme (https; with
`insecure`, https without certificate checks, else plain http - straight away for a
loopback host), finds credentials
(explicit, else docker's config file), always knows a manifest's digest, and pushes
blobs with resumption: an upload cut by the network is asked where it stands and
continued from there (the source is reopened at that offset), else started again.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import httpx

from mirror.client.credentials import Credentials, lookup
from mirror.client.errors import ContentMismatch
from mirror.digests import Digest
from mirror.errors import ManifestInvalid, Unsupported
from mirror.registryhttp.blob import UpstreamBlob
from mirror.registryhttp.client import DistributionClient, ManifestHead, StoredManifest, Upload
from mirror.registryhttp.errors import UpstreamError, UpstreamNotFound, UpstreamUnavailable
from mirror.types import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    Manifest,
)

log = logging.getLogger(__name__)

ACCEPT_ALL = (OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST)
# Blobs up to this size go in one PUT (two requests); larger ones are streamed (PATCH).
MONOLITHIC_LIMIT = 1 << 20
RESUME_ATTEMPTS = 3
MAX_BLOB_IN_MEMORY = 64 << 20
SEND_BATCH = 1 << 20

# Reads a blob from an offset on (for an upload, and again to resume it).
Opener = Callable[[int], AsyncIterator[bytes]]


class Pushed(Enum):
    PRESENT = "present"  # the registry had it
    MOUNTED = "mounted"  # mounted from another repository of the registry
    UPLOADED = "uploaded"


@dataclass(frozen=True, slots=True)
class RemoteManifest:
    """A manifest as the registry sent it: exact bytes, media type and digest."""

    raw: bytes
    media_type: str
    digest: Digest

    def parsed(self) -> Manifest:
        """Raise ManifestInvalid / Unsupported for content that is no image manifest."""
        return Manifest.parse(self.raw, self.media_type or None, self.digest)

    def descriptor(self) -> Descriptor:
        return Descriptor(self.media_type, self.digest, len(self.raw))


class Registry:
    """One registry host (`host[:port]` as written in references). Close with `aclose()`.

    `credentials` None means: docker's config file (`docker_config`, default
    `~/.docker/config.json`), else anonymous. `transport` replaces the network (tests);
    `scheme` then says which one the registry speaks.
    """

    def __init__(
        self,
        host: str,
        *,
        insecure: bool = False,
        credentials: Credentials | None = None,
        docker_config: Path | None = None,
        use_docker_config: bool = True,
        transport: httpx.AsyncBaseTransport | None = None,
        scheme: str | None = None,
        max_connections: int = 32,
        read_timeout: float = 60.0,
    ) -> None:
        self.host = host
        self.insecure = insecure
        if credentials is None and use_docker_config:
            credentials = lookup(host, docker_config)
        self._credentials = credentials
        self._transport = transport
        self._scheme = scheme
        self._max_connections = max_connections
        self._read_timeout = read_timeout
        self._client: DistributionClient | None = None

    async def __aenter__(self) -> Registry:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _make(self, scheme: str, retries: int = 2) -> DistributionClient:
        creds = self._credentials
        return DistributionClient(
            f"{scheme}://{self.host}",
            username=creds.username if creds else None,
            password=creds.password if creds else None,
            identity_token=creds.identity_token if creds else None,
            name=self.host,
            transport=self._transport,
            retries=retries,
            read_timeout=self._read_timeout,
            max_connections=self._max_connections,
            # The user chose this registry: its token realm and redirects may be local.
            allow_private_targets=True,
            tls=not self.insecure,
            # Bodies are bounded by the read timeout, not by a rate a slow link may miss.
            blob_min_rate=0.0,
        )

    async def client(self) -> DistributionClient:
        """The connection to the registry, made at first use (with `insecure`, trying
        https without verification and then plain http)."""
        if self._client is not None:
            return self._client
        if self._scheme is not None or not self.insecure:
            self._client = self._make(self._scheme or "https")
            return self._client
        if _is_loopback(self.host):
            # As crane does: an insecure registry on this machine speaks plain HTTP.
            self._client = self._make("http")
            return self._client
        probe = self._make("https", retries=0)
        scheme = "https"
        try:
            await probe.ping()
        except UpstreamUnavailable as exc:
            if exc.status is None:  # no HTTPS there (or no server at all): plain HTTP
                scheme = "http"
        except UpstreamError:
            pass  # HTTPS answered; the request itself will meet the same refusal
        finally:
            await probe.aclose()
        self._client = self._make(scheme)
        return self._client

    async def ping(self) -> None:
        """GET /v2/ with the auth flow; raises UpstreamAuthError for refused credentials."""
        await (await self.client()).ping()

    async def catalog(self, limit: int = 100_000) -> list[str]:
        return await (await self.client()).catalog(limit=limit)

    async def tags(self, repository: str) -> list[str]:
        return await (await self.client()).list_tags(repository)

    async def head_manifest(
        self, repository: str, reference: str, accept: Sequence[str] = ACCEPT_ALL
    ) -> ManifestHead:
        return await (await self.client()).head_manifest(repository, reference, accept)

    async def get_manifest(
        self, repository: str, reference: str, accept: Sequence[str] = ACCEPT_ALL
    ) -> RemoteManifest:
        """The manifest's exact bytes; checked against the digest asked for and the one
        the registry says (registryhttp), and the digest computed when it says none."""
        fetched = await (await self.client()).get_manifest(repository, reference, accept)
        digest = fetched.digest or Digest.of(fetched.raw)
        media_type = fetched.media_type
        if media_type not in ACCEPT_ALL:
            try:
                media_type = Manifest.parse(fetched.raw, None, digest).media_type
            except (ManifestInvalid, Unsupported):
                pass
        return RemoteManifest(fetched.raw, media_type, digest)

    async def put_manifest(
        self, repository: str, reference: str, raw: bytes, media_type: str
    ) -> Digest:
        return (await self.store_manifest(repository, reference, raw, media_type)).digest

    async def store_manifest(
        self, repository: str, reference: str, raw: bytes, media_type: str
    ) -> StoredManifest:
        """`put_manifest`, and the subject the registry indexed it under (referrers API)."""
        client = await self.client()
        return await client.put_manifest(repository, reference, raw, media_type)

    async def delete_manifest(self, repository: str, digest: Digest) -> None:
        await (await self.client()).delete_manifest(repository, digest)

    async def resolve(self, repository: str, reference: str) -> Digest:
        """A tag's digest (one HEAD; a GET when the registry says no digest)."""
        head = await self.head_manifest(repository, reference)
        if head.digest is not None:
            return head.digest
        return (await self.get_manifest(repository, reference)).digest

    async def referrers(
        self, repository: str, digest: Digest, artifact_type: str | None = None
    ) -> list[Descriptor]:
        found = await (await self.client()).get_referrers(repository, digest, artifact_type)
        out = []
        for i, item in enumerate(found):
            try:
                out.append(Descriptor.from_json(item, f"referrers[{i}]"))
            except ManifestInvalid:
                continue
        return out

    async def head_blob(self, repository: str, digest: Digest) -> int | None:
        """The blob's size (None when the registry does not say); UpstreamNotFound."""
        return await (await self.client()).head_blob(repository, digest)

    async def has_blob(self, repository: str, digest: Digest) -> bool:
        try:
            await self.head_blob(repository, digest)
        except UpstreamNotFound:
            return False
        return True

    async def open_blob(
        self, repository: str, digest: Digest, offset: int = 0, length: int | None = None
    ) -> UpstreamBlob:
        """A blob's body as a stream (`async with`, iterate once). Read whole from 0 it is
        verified against the digest at its end; a range cannot be."""
        client = await self.client()
        return await client.open_blob(repository, digest, offset, length=length)

    async def get_blob(
        self, repository: str, digest: Digest, max_size: int = MAX_BLOB_IN_MEMORY
    ) -> bytes:
        """A small blob whole (a config), verified."""
        body = bytearray()
        async with await self.open_blob(repository, digest) as blob:
            async for chunk in blob:
                body += chunk
                if len(body) > max_size:
                    raise ContentMismatch(f"blob {digest} is larger than {max_size} bytes")
        return bytes(body)

    async def mount_blob(self, repository: str, digest: Digest, source: str) -> bool:
        """Mount a blob of another repository of this registry; False when it did not."""
        client = await self.client()
        upload = await client.start_upload(repository, mount=digest, source=source)
        if upload is None:
            return True
        await client.cancel_upload(upload)
        return False

    async def push_blob(
        self,
        repository: str,
        digest: Digest,
        size: int,
        opener: Opener,
        *,
        chunk_size: int | None = None,
        mount_from: Sequence[str] = (),
        check: bool = True,
    ) -> Pushed:
        """Upload a blob unless the registry has it (`check`: one HEAD) or can mount it
        from one of `mount_from`. Bodies up to MONOLITHIC_LIMIT go in one PUT; larger
        ones are streamed in one PATCH, or in PATCHes of `chunk_size` bytes. The
        registry checks the digest before it stores anything."""
        client = await self.client()
        if check and await self.has_blob(repository, digest):
            return Pushed.PRESENT
        opened: Upload | None = None
        for source in mount_from:
            if source == repository:
                continue
            opened = await client.start_upload(repository, mount=digest, source=source)
            if opened is None:
                return Pushed.MOUNTED
            break
        upload = opened or await _new_upload(client, repository)
        if size <= MONOLITHIC_LIMIT and chunk_size is None:
            body = bytearray()
            async for chunk in opener(0):
                body += chunk
            await client.finish_upload(upload, digest, bytes(body))
            return Pushed.UPLOADED
        for attempt in range(RESUME_ATTEMPTS + 1):
            try:
                upload = await self._send(client, upload, size, opener, chunk_size)
                break
            except UpstreamUnavailable as exc:
                if exc.status is not None or attempt == RESUME_ATTEMPTS:
                    raise
                log.info("upload of %s cut (%s); resuming", digest, exc.message)
                try:
                    upload = await client.upload_status(upload)
                except UpstreamError:
                    upload = await _new_upload(client, repository)
                if upload.offset > size:
                    upload = await _new_upload(client, repository)
        await client.finish_upload(upload, digest)
        return Pushed.UPLOADED

    async def _send(
        self,
        client: DistributionClient,
        upload: Upload,
        size: int,
        opener: Opener,
        chunk_size: int | None,
    ) -> Upload:
        while upload.offset < size:
            length = size - upload.offset
            if chunk_size is not None:
                length = min(length, chunk_size)
            body = _take(opener(upload.offset), length)
            sent = await client.upload_chunk(upload, body, length)
            if sent.offset != upload.offset + length:
                raise ContentMismatch(
                    f"{self.host}: upload holds {sent.offset} bytes, not {upload.offset + length}"
                )
            upload = sent
        return upload


def _is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


async def _new_upload(client: DistributionClient, repository: str) -> Upload:
    upload = await client.start_upload(repository)
    if upload is None:  # only a mount answers 201
        raise UpstreamUnavailable(f"{client.name}: no upload session for {repository}")
    return upload


async def _take(chunks: AsyncIterator[bytes], length: int) -> AsyncIterator[bytes]:
    """The first `length` bytes of `chunks` (the rest is left unread), in pieces of at
    least SEND_BATCH bytes: each piece costs a round of the HTTP stack and a socket write,
    and a source hands on its chunks as they arrive, often a few KiB at a time."""
    left = length
    batch: list[bytes] = []  # joined once: one copy of each byte, not two
    batched = 0
    try:
        async for chunk in chunks:
            if len(chunk) >= left:
                batch.append(chunk[:left] if len(chunk) > left else chunk)
                left = 0
                break
            left -= len(chunk)
            if not batch and len(chunk) >= SEND_BATCH:
                yield chunk
                continue
            batch.append(chunk)
            batched += len(chunk)
            if batched >= SEND_BATCH:
                yield b"".join(batch)
                batch.clear()
                batched = 0
        if batch:
            yield b"".join(batch)
    finally:
        closer = getattr(chunks, "aclose", None)
        if closer is not None:
            await closer()
    if left:
        raise ContentMismatch(f"the source ended {left} bytes short")
