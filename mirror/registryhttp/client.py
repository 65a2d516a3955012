"""`DistributionClient`: Registry API V2 (pull side) against one upstream registry.

One pooled httpx.AsyncClient per upstream. Every request goes through three layers:
`_retry` (bounded exponential backoff for idempotent requests on connection errors,
timeouts and 502/503/504, all within one deadline per request), `_authorized` (token or
Basic auth, one retry after a 401), and `_follow` (redirects followed by hand, so the
registry's `Authorization` never reaches another origin - blob GETs are routinely
redirected to object stores and CDNs). Unless a transport is given, connections go
through `registryhttp.addresses`' guard: hosts other than the upstream's own are dialled
only on public addresses, unless the upstream itself is on a private one.

Everything returned is plain data (dataclasses, bytes); every failure is an UpstreamError.

The same client pushes (`mirror.client` and its CLI verbs): manifests are PUT and
DELETEd, blobs uploaded in a session (`start_upload` - or mounted from another
repository -, `upload_chunk`, `upload_status` to resume, `finish_upload`). Upload bodies
may be streams; a stream is sent once, never retried or replayed.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import random
import re
import ssl
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import quote

import httpx
from httpcore._async.http11 import AsyncHTTP11Connection

from mirror import requestid
from mirror.digests import Digest, is_digest
from mirror.errors import DigestInvalid, Unsupported
from mirror.registryhttp.addresses import guarded_transport
from mirror.registryhttp.auth import RegistryAuth, parse_challenges
from mirror.registryhttp.blob import MIN_RATE, RATE_WINDOW, UpstreamBlob
from mirror.registryhttp.errors import (
    UpstreamAuthError,
    UpstreamContentError,
    UpstreamError,
    UpstreamNotFound,
    UpstreamRateLimited,
    UpstreamUnavailable,
)
from mirror.registryhttp.headers import (
    ascii_int,
    digest_header,
    media_type,
    next_page,
    quota,
    valid_retry_after,
)
from mirror.types import MAX_MANIFEST_SIZE, OCI_INDEX

log = logging.getLogger(__name__)

# httpcore reads at most 64 KiB per socket read, and h11 then costs a Python round per
# read: blob downloads ran at ~530 MB/s on asyncio. 1 MiB reads reach ~1,300 MB/s here.
# (A class attribute: this applies to every httpx client in the process.)
AsyncHTTP11Connection.READ_NUM_BYTES = max(AsyncHTTP11Connection.READ_NUM_BYTES, 1 << 20)

T = TypeVar("T")

# A manifest may be 4 MiB; a little slack so an exactly-at-limit one is not cut short.
MANIFEST_BODY_LIMIT = MAX_MANIFEST_SIZE + 64 * 1024
MAX_REDIRECTS = 5
# Blob chunks are handed on as they arrive (None): the first byte reaches the first
# client without waiting for a buffer to fill; the store's writers batch small writes.
BLOB_CHUNK_SIZE: int | None = None
USER_AGENT = "mirror-registry/0.1"
_ERROR_BODY_LIMIT = 64 * 1024
_RETRY_STATUSES = frozenset({502, 503, 504})
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS = {"http": 80, "https": 443}
TAGS_PAGE = 1000
TAGS_LIMIT = 10_000
CATALOG_LIMIT = 100_000
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$", re.ASCII)
# An upload's `Range: 0-<last byte>` (Distribution says `0--1` before the first byte).
_UPLOAD_RANGE = re.compile(r"^(?:bytes=)?0-(-1|\d+)$", re.ASCII)
OCTET_STREAM = "application/octet-stream"

Origin = tuple[str, str, int]
# A request body: bytes can be sent again (after a 401, a redirect); a stream cannot.
Content = bytes | AsyncIterable[bytes] | None


@dataclass(frozen=True, slots=True)
class Upload:
    """A blob upload session: where to send the next request, and how much is stored."""

    repo: str
    location: str
    offset: int = 0


@dataclass(frozen=True, slots=True)
class ManifestHead:
    """What a manifest HEAD tells: digest (Docker-Content-Digest), media type and size."""

    digest: Digest | None
    media_type: str
    size: int | None


@dataclass(frozen=True, slots=True)
class StoredManifest:
    """A manifest PUT's answer: its digest, and the `OCI-Subject` header - a registry
    with the referrers API names the subject it indexed the manifest under."""

    digest: Digest
    subject: Digest | None


@dataclass(frozen=True, slots=True)
class FetchedManifest:
    """A fetched manifest: exact bytes, Content-Type without parameters, header digest."""

    raw: bytes
    media_type: str
    digest: Digest | None


@dataclass(frozen=True, slots=True)
class RateLimit:
    """The upstream's last reported pull quota (Docker Hub `ratelimit-*` headers)."""

    limit: int
    remaining: int | None
    window: int | None  # seconds


class _Transient(UpstreamUnavailable):
    """A failure worth retrying; never leaves this module (see `_retry`)."""


class DistributionClient:
    """An httpx-based client for one upstream registry. Close it with `aclose()`."""

    def __init__(
        self,
        base_url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        identity_token: str | None = None,
        name: str = "",
        transport: httpx.AsyncBaseTransport | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        retries: int = 2,
        backoff: float = 0.2,
        deadline: float | None = None,
        max_connections: int = 64,
        blob_chunk_size: int | None = BLOB_CHUNK_SIZE,
        blob_min_rate: float = MIN_RATE,
        blob_rate_window: float = RATE_WINDOW,
        blob_deadline: float | None = None,
        allow_private_targets: bool | None = None,
        tls: ssl.SSLContext | bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        base = httpx.URL(base_url)
        if base.scheme not in _DEFAULT_PORTS or not base.host:
            raise ValueError(f"upstream URL must be http(s)://host[:port]: {base_url!r}")
        self._base = str(base).rstrip("/")
        self._origin = _origin(base)
        self.name = name or base.host
        self._retries = max(0, retries)
        self._backoff = max(0.0, backoff)
        # One request, its retries included, gets this long: a hung upstream would
        # otherwise cost (retries + 1) read timeouts before the caller hears of it.
        self._deadline = deadline if deadline is not None else connect_timeout + read_timeout
        self._chunk_size = blob_chunk_size
        self._blob_pace = (blob_min_rate, blob_rate_window, blob_deadline)
        limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        if transport is None:
            # Redirect targets and token realms are dialled only on public addresses,
            # unless the upstream itself is not (see registryhttp.addresses).
            transport = guarded_transport(
                base.host, internal=allow_private_targets, limits=limits, verify=tls
            )
        # trust_env off: proxies and CA bundles come from configuration, not the environment.
        self._http = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(
                connect=connect_timeout, read=read_timeout, write=read_timeout, pool=read_timeout
            ),
            limits=limits,
            follow_redirects=False,
            http2=False,
            trust_env=False,
            headers={"User-Agent": USER_AGENT},
        )
        self._auth = RegistryAuth(
            self._http,
            username=username,
            password=password,
            name=self.name,
            secure=base.scheme == "https",
            identity_token=identity_token,
            clock=clock,
        )
        self._ratelimit: RateLimit | None = None

    @property
    def ratelimit(self) -> RateLimit | None:
        """The quota the registry last reported, or None if it never did."""
        return self._ratelimit

    async def aclose(self) -> None:
        """Close the connection pool. Idempotent; open blobs should be closed first."""
        await self._http.aclose()

    async def ping(self) -> None:
        """GET /v2/ (with the auth flow); return when the registry answers 2xx.

        Raises UpstreamAuthError when credentials are refused, otherwise another UpstreamError.
        """

        async def once() -> None:
            response = await self._once("GET", "/v2/", "", {})
            await _discard(response)

        await self._retry(once)

    async def head_manifest(self, repo: str, reference: str, accept: Sequence[str]) -> ManifestHead:
        """HEAD a manifest by tag or digest. Raises UpstreamNotFound on 404.

        A missing or malformed Docker-Content-Digest gives `digest=None`.
        """
        path = f"/v2/{_path(repo)}/manifests/{_path(reference)}"

        async def once() -> ManifestHead:
            response = await self._once("HEAD", path, _pull_scope(repo), _accept(accept))
            await _discard(response)
            return ManifestHead(
                digest=digest_header(response.headers.get("docker-content-digest")),
                media_type=media_type(response.headers.get("content-type")),
                size=_int_header(response, "content-length"),
            )

        return await self._retry(once)

    async def get_manifest(
        self, repo: str, reference: str, accept: Sequence[str]
    ) -> FetchedManifest:
        """GET a manifest by tag or digest. Raises UpstreamNotFound on 404.

        Raises UpstreamContentError when the body exceeds MANIFEST_BODY_LIMIT, or does not
        hash to the requested digest or to the Docker-Content-Digest header.
        """
        path = f"/v2/{_path(repo)}/manifests/{_path(reference)}"

        async def once() -> FetchedManifest:
            response = await self._once("GET", path, _pull_scope(repo), _accept(accept))
            try:
                raw = await self._read_manifest(response)
            finally:
                await response.aclose()
            return FetchedManifest(
                raw,
                media_type(response.headers.get("content-type")),
                digest_header(response.headers.get("docker-content-digest")),
            )

        fetched = await self._retry(once)
        expected = [fetched.digest] if fetched.digest is not None else []
        if is_digest(reference):
            try:
                expected.append(Digest.parse(reference))
            except (DigestInvalid, Unsupported):
                pass
        for digest in expected:
            if Digest.of(fetched.raw, digest.algorithm) != digest:
                raise UpstreamContentError(
                    f"{self.name}: manifest {repo}@{reference} does not match {digest}",
                    status=200,
                )
        return fetched

    async def list_tags(self, repo: str, *, limit: int = TAGS_LIMIT) -> list[str]:
        """Every tag of `repo` (following `Link` pages, up to `limit` tags), sorted.

        Raises UpstreamNotFound on 404 and UpstreamContentError for a malformed reply.
        """
        path: str | None = f"/v2/{_path(repo)}/tags/list?n={TAGS_PAGE}"
        tags: list[str] = []
        pages = 0
        while path is not None and len(tags) < limit and pages < limit // TAGS_PAGE + 1:
            body, link = await self._retry(functools.partial(self._tags_page, repo, path))
            pages += 1
            try:
                page = json.loads(body).get("tags") or []
            except (ValueError, AttributeError):
                raise UpstreamContentError(f"{self.name}: bad tag list for {repo}") from None
            if not isinstance(page, list) or not all(isinstance(t, str) for t in page):
                raise UpstreamContentError(f"{self.name}: bad tag list for {repo}")
            tags.extend(page)
            path = next_page(link, self._base)
        return sorted(set(tags[:limit]))

    async def catalog(self, *, limit: int = CATALOG_LIMIT) -> list[str]:
        """Every repository the registry lists (`/v2/_catalog`, following `Link` pages, up
        to `limit` names), sorted. Raises UpstreamNotFound when it has no catalog (404),
        UpstreamAuthError when it refuses it (Docker Hub), UpstreamContentError for a
        malformed reply."""
        path: str | None = f"/v2/_catalog?n={TAGS_PAGE}"
        names: list[str] = []
        pages = 0
        while path is not None and len(names) < limit and pages < limit // TAGS_PAGE + 1:
            body, link = await self._retry(
                functools.partial(self._list_page, "registry:catalog:*", path)
            )
            pages += 1
            try:
                page = json.loads(body).get("repositories") or []
            except (ValueError, AttributeError):
                raise UpstreamContentError(f"{self.name}: bad catalog") from None
            if not isinstance(page, list) or not all(isinstance(n, str) for n in page):
                raise UpstreamContentError(f"{self.name}: bad catalog")
            names.extend(page)
            path = next_page(link, self._base)
        return sorted(set(names[:limit]))

    async def _tags_page(self, repo: str, path: str) -> tuple[bytes, str | None]:
        return await self._list_page(_pull_scope(repo), path)

    async def _list_page(self, scope: str, path: str) -> tuple[bytes, str | None]:
        response = await self._once("GET", path, scope, {})
        try:
            body = await self._read_manifest(response)
        finally:
            await response.aclose()
        return body, response.headers.get("link")

    async def get_referrers(
        self, repo: str, digest: Digest, artifact_type: str | None = None
    ) -> list[dict[str, object]]:
        """The descriptors of the referrers index for `digest` (OCI 1.1 referrers API).

        Raises UpstreamNotFound when the upstream has no referrers API (404), and
        UpstreamContentError for a malformed reply.
        """
        path = f"/v2/{_path(repo)}/referrers/{digest}"
        if artifact_type:
            path += f"?artifactType={quote(artifact_type, safe='')}"

        async def once() -> bytes:
            response = await self._once("GET", path, _pull_scope(repo), {"Accept": OCI_INDEX})
            try:
                return await self._read_manifest(response)
            finally:
                await response.aclose()

        body = await self._retry(once)
        try:
            manifests = json.loads(body).get("manifests") or []
        except (ValueError, AttributeError):
            raise UpstreamContentError(f"{self.name}: bad referrers index for {digest}") from None
        if not isinstance(manifests, list) or not all(isinstance(m, dict) for m in manifests):
            raise UpstreamContentError(f"{self.name}: bad referrers index for {digest}")
        return manifests

    async def head_blob(self, repo: str, digest: Digest) -> int | None:
        """The size of a blob (Content-Length of a HEAD), None when not given.

        Raises UpstreamNotFound on 404.
        """
        path = f"/v2/{_path(repo)}/blobs/{digest}"

        async def once() -> int | None:
            response = await self._once("HEAD", path, _pull_scope(repo), {})
            await _discard(response)
            return _int_header(response, "content-length")

        return await self._retry(once)

    async def open_blob(
        self,
        repo: str,
        digest: Digest,
        offset: int = 0,
        *,
        length: int | None = None,
        verify: bool = True,
    ) -> UpstreamBlob:
        """Start downloading a blob, from `offset` on (Range; a 206 is then required), and
        with `length` only that many bytes.

        Opening raises UpstreamNotFound / UpstreamRateLimited / ... before any byte is read,
        retrying transient failures. The returned stream is never retried; the caller
        iterates it once and must `aclose()` it (or use `async with`). With `verify` and
        offset 0 the stream checks the digest and raises UpstreamContentError at its end.
        """
        if offset < 0 or (length is not None and length < 1):
            raise ValueError("offset must not be negative, length must be positive")
        path = f"/v2/{_path(repo)}/blobs/{digest}"
        # Blobs are stored byte for byte: ask for no content coding, and decode none.
        headers = {"Accept-Encoding": "identity"}
        if length is not None:
            headers["Range"] = f"bytes={offset}-{offset + length - 1}"
        elif offset:
            headers["Range"] = f"bytes={offset}-"

        async def once() -> UpstreamBlob:
            response = await self._once("GET", path, _pull_scope(repo), headers)
            try:
                return self._blob(response, digest, offset, verify and length is None, length)
            except UpstreamError:
                await response.aclose()
                raise

        return await self._retry(once)

    def _blob(
        self,
        response: httpx.Response,
        digest: Digest,
        offset: int,
        verify: bool,
        wanted: int | None = None,
    ) -> UpstreamBlob:
        status = response.status_code
        where = f"{self.name}: blob {digest}"
        ranged = bool(offset) or wanted is not None
        if status != (206 if ranged else 200):
            raise UpstreamUnavailable(f"{where}: unexpected status {status}", status=status)
        content_length = _int_header(response, "content-length")
        if not ranged:
            size, length = content_length, content_length
        else:
            match = _CONTENT_RANGE.match(response.headers.get("content-range", "").strip())
            if match is None or int(match[1]) != offset or int(match[2]) < offset:
                raise UpstreamUnavailable(
                    f"{where}: bad Content-Range for offset {offset}", status=status
                )
            size = int(match[3]) if match[3] != "*" else None
            length = int(match[2]) - offset + 1
            if wanted is not None and length > wanted:
                raise UpstreamUnavailable(f"{where}: more than the range asked", status=status)
        return UpstreamBlob(
            response.aiter_raw(self._chunk_size),
            response.aclose,
            size=size,
            length=length,
            status=status,
            offset=offset,
            expected=digest if verify and not offset else None,
            where=where,
            min_rate=self._blob_pace[0],
            rate_window=self._blob_pace[1],
            deadline=self._blob_pace[2],
        )

    async def put_manifest(
        self, repo: str, reference: str, raw: bytes, media_type: str
    ) -> StoredManifest:
        """PUT a manifest's exact bytes under a tag or its digest.

        Raises UpstreamContentError when the registry says another digest."""
        digest = Digest.of(raw)
        path = f"/v2/{_path(repo)}/manifests/{_path(reference)}"

        async def once() -> tuple[Digest | None, Digest | None]:
            headers = {"Content-Type": media_type}
            response = await self._once("PUT", path, _push_scope(repo), headers, content=raw)
            await _discard(response)
            said = digest_header(response.headers.get("docker-content-digest"))
            return said, digest_header(response.headers.get("oci-subject"))

        said, subject = await self._retry(once)
        if said is not None and said.algorithm == digest.algorithm and said != digest:
            raise UpstreamContentError(f"{self.name}: {repo}: registry stored {said}, not {digest}")
        return StoredManifest(digest, subject)

    async def delete_manifest(self, repo: str, digest: Digest) -> None:
        """DELETE a manifest by digest (every tag on it goes). Raises UpstreamNotFound."""
        path = f"/v2/{_path(repo)}/manifests/{digest}"

        async def once() -> None:
            await _discard(await self._once("DELETE", path, f"repository:{repo}:delete", {}))

        await self._retry(once)

    async def start_upload(
        self, repo: str, *, mount: Digest | None = None, source: str | None = None
    ) -> Upload | None:
        """Open an upload session (POST). With `mount` and `source`, ask the registry to
        mount that blob from the `source` repository instead: None means it did (201)."""
        path = f"/v2/{_path(repo)}/blobs/uploads/"
        scope = _push_scope(repo)
        if mount is not None and source is not None:
            path += f"?mount={mount}&from={quote(source, safe='/')}"
            scope += f" {_pull_scope(source)}"

        async def once() -> Upload | None:
            response = await self._once("POST", path, scope, {"Content-Length": "0"})
            await _discard(response)
            if response.status_code == 201 and mount is not None:
                return None
            return self._upload(response, repo, 0)

        return await self._retry(once)

    async def upload_status(self, upload: Upload) -> Upload:
        """Ask where an interrupted upload stands (GET on its location): the stored length."""

        async def once() -> Upload:
            response = await self._once(
                "GET", "", _push_scope(upload.repo), {}, url=self._location(upload)
            )
            await _discard(response)
            return self._upload(response, upload.repo, None, upload.location)

        return await self._retry(once)

    async def upload_chunk(
        self, upload: Upload, chunks: bytes | AsyncIterable[bytes], length: int | None = None
    ) -> Upload:
        """PATCH a chunk (bytes, or a stream of `length` bytes when known) onto the upload.

        With a known length the chunk says its range (`Content-Range`), so a registry that
        holds another length refuses it (416) instead of storing a wrong blob. A stream is
        sent once: not retried.
        """
        if isinstance(chunks, bytes):
            length = len(chunks)
        headers = {"Content-Type": OCTET_STREAM}
        if length is not None:
            headers["Content-Length"] = str(length)
            if length:
                headers["Content-Range"] = f"{upload.offset}-{upload.offset + length - 1}"
        response = await _final(
            self._once(
                "PATCH",
                "",
                _push_scope(upload.repo),
                headers,
                content=chunks,
                url=self._location(upload),
            )
        )
        await _discard(response)
        return self._upload(response, upload.repo, None, upload.location)

    async def cancel_upload(self, upload: Upload) -> None:
        """DELETE an upload session nobody will finish; failures are only logged."""
        try:
            url = self._location(upload)
            await _discard(
                await _final(self._once("DELETE", "", _push_scope(upload.repo), {}, url=url))
            )
        except UpstreamError as exc:
            log.info("could not cancel an upload: %s", exc.message)

    async def finish_upload(
        self,
        upload: Upload,
        digest: Digest,
        chunks: bytes | AsyncIterable[bytes] = b"",
        length: int | None = None,
    ) -> None:
        """Close the upload with its digest (PUT), sending a last chunk if given.

        The registry verifies the digest; a mismatch comes back as an UpstreamError."""
        url = self._location(upload).copy_add_param("digest", str(digest))
        if isinstance(chunks, bytes):
            length = len(chunks)
        headers = {"Content-Type": OCTET_STREAM}
        if length is not None:
            headers["Content-Length"] = str(length)
        response = await _final(
            self._once("PUT", "", _push_scope(upload.repo), headers, content=chunks, url=url)
        )
        await _discard(response)
        said = digest_header(response.headers.get("docker-content-digest"))
        if said is not None and said.algorithm == digest.algorithm and said != digest:
            raise UpstreamContentError(f"{self.name}: registry stored {said}, not {digest}")

    def _location(self, upload: Upload) -> httpx.URL:
        return httpx.URL(self._base + "/").join(upload.location)

    def _upload(
        self, response: httpx.Response, repo: str, offset: int | None, previous: str = ""
    ) -> Upload:
        where = f"{self.name}: upload to {repo}"
        location = response.headers.get("location") or previous
        if not location:
            raise UpstreamUnavailable(f"{where}: no Location", status=response.status_code)
        if offset is None:
            match = _UPLOAD_RANGE.match(response.headers.get("range", "").strip())
            if match is None:
                raise UpstreamUnavailable(f"{where}: no usable Range", status=response.status_code)
            offset = max(int(match[1]) + 1, 0)
        return Upload(repo, location, offset)

    async def _read_manifest(self, response: httpx.Response) -> bytes:
        where = f"{self.name}: manifest {response.request.url.path}"
        declared = _int_header(response, "content-length")
        encoded = response.headers.get("content-encoding", "identity").lower() != "identity"
        if declared is not None and declared > MANIFEST_BODY_LIMIT and not encoded:
            raise UpstreamContentError(f"{where}: {declared} bytes is too large", status=200)
        body = bytearray()
        try:
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MANIFEST_BODY_LIMIT:
                    raise UpstreamContentError(f"{where}: body too large", status=200)
        except httpx.HTTPError as exc:
            raise _classify(exc, where) from exc
        return bytes(body)

    async def _retry(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """Run `attempt`, retrying transient failures, all within the deadline."""
        loop = asyncio.get_running_loop()
        ends = loop.time() + self._deadline
        tries = 0
        while True:
            try:
                async with asyncio.timeout_at(ends) as limit:
                    return await attempt()
            except TimeoutError:
                if not limit.expired():
                    raise
                raise UpstreamUnavailable(
                    f"{self.name}: no answer within {self._deadline:g}s"
                ) from None
            except _Transient as exc:
                delay = self._backoff * 2**tries * (0.5 + random.random() / 2)
                if tries >= self._retries or loop.time() + delay >= ends:
                    raise UpstreamUnavailable(
                        exc.message, status=exc.status, retry_after=exc.retry_after
                    ) from exc.__cause__
                log.info("retrying after %s (in %.2fs)", exc.message, delay)
                tries += 1
                await asyncio.sleep(delay)

    async def _once(
        self,
        method: str,
        path: str,
        scope: str,
        headers: dict[str, str],
        *,
        content: Content = None,
        url: httpx.URL | None = None,
    ) -> httpx.Response:
        """One attempt: auth, redirects. Returns a 2xx response whose body is unread.

        `url` (an upload's location) replaces the base URL and `path`."""
        url = url if url is not None else httpx.URL(self._base + path)
        where = f"{self.name}: {method} {url.path}"
        try:
            response = await self._authorized(method, url, scope, headers, content)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise _classify(exc, where) from exc
        if response.is_success:
            return response
        body = await _discard(response)
        raise _failure(response, where, body)

    async def _authorized(
        self,
        method: str,
        url: httpx.URL,
        scope: str,
        headers: dict[str, str],
        content: Content = None,
    ) -> httpx.Response:
        sent = self._auth.authorization(scope)
        response = await self._follow(method, url, headers, sent, content)
        # A 401 from another origin (a redirect target) is not ours to answer.
        if response.status_code != 401 or _origin(response.url) != self._origin:
            return response
        challenges = parse_challenges(response.headers.get_list("www-authenticate"))
        await _discard(response)
        retry_with = await self._auth.answer(challenges, scope, sent)
        if not _replayable(content):
            raise UpstreamAuthError(f"{self.name}: {method} {url.path} refused (401)", status=401)
        return await self._follow(method, url, headers, retry_with, content)

    async def _follow(
        self,
        method: str,
        url: httpx.URL,
        headers: dict[str, str],
        authorization: str | None,
        content: Content = None,
    ) -> httpx.Response:
        for hop in range(MAX_REDIRECTS + 1):
            own = _origin(url) == self._origin
            hop_headers = dict(headers)
            if authorization is not None and own:
                hop_headers["Authorization"] = authorization
            request_id = requestid.current()
            if request_id is not None and own:
                # The upstream's logs can be matched with ours (a redirect's target is
                # someone else: a storage service).
                hop_headers[requestid.HEADER] = request_id
            request = self._http.build_request(method, url, headers=hop_headers, content=content)
            response = await self._http.send(request, stream=True)
            if own:
                self._note_ratelimit(response)
            location = response.headers.get("location")
            if response.status_code not in _REDIRECT_STATUSES or location is None:
                return response
            if not _replayable(content):
                return response  # a failure: a stream's body is gone
            await _discard(response)
            if hop == MAX_REDIRECTS:
                break
            url = response.url.join(location)
            if url.scheme not in _DEFAULT_PORTS:
                raise UpstreamUnavailable(f"{self.name}: redirect to unsupported URL {url.scheme}:")
        raise UpstreamUnavailable(f"{self.name}: more than {MAX_REDIRECTS} redirects")

    def _note_ratelimit(self, response: httpx.Response) -> None:
        limit = quota(response.headers.get("ratelimit-limit"))
        if limit is None:
            return
        remaining = quota(response.headers.get("ratelimit-remaining"))
        self._ratelimit = RateLimit(
            limit=limit[0],
            remaining=remaining[0] if remaining is not None else None,
            window=limit[1],
        )


async def _final(attempt: Awaitable[T]) -> T:
    """An attempt that is not retried: a transient failure is an UpstreamUnavailable."""
    try:
        return await attempt
    except _Transient as exc:
        raise UpstreamUnavailable(
            exc.message, status=exc.status, retry_after=exc.retry_after
        ) from exc.__cause__


def _replayable(content: Content) -> bool:
    return content is None or isinstance(content, bytes)


def _failure(response: httpx.Response, where: str, body: bytes) -> UpstreamError:
    status = response.status_code
    message = f"{where} -> {status}{_error_detail(body)}"
    retry_after = valid_retry_after(response.headers.get("retry-after"))
    if status == 404:
        return UpstreamNotFound(message, status=status)
    if status == 429:
        return UpstreamRateLimited(message, status=status, retry_after=retry_after)
    if status in (401, 403):
        return UpstreamAuthError(message, status=status)
    if status in _RETRY_STATUSES:
        return _Transient(message, status=status, retry_after=retry_after)
    return UpstreamUnavailable(message, status=status, retry_after=retry_after)


def _classify(exc: Exception, where: str) -> UpstreamUnavailable:
    message = f"{where}: {type(exc).__name__}: {exc}"
    if isinstance(exc, httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError):
        return _Transient(message)
    return UpstreamUnavailable(message)


def _error_detail(body: bytes) -> str:
    """`: CODE: message` from a Registry API error body, or "" when it has none."""
    try:
        doc = json.loads(body)
        first = doc["errors"][0]
        code, text = str(first.get("code", "")), str(first.get("message", ""))
    except (ValueError, UnicodeDecodeError, KeyError, IndexError, TypeError, AttributeError):
        return ""
    return f": {code}: {text}"[:300]


async def _discard(response: httpx.Response) -> bytes:
    """Read at most a small body (so the connection can be reused), then close. Never raises
    httpx errors: a body we only glance at is not worth failing for."""
    body = bytearray()
    try:
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > _ERROR_BODY_LIMIT:
                break
    except httpx.HTTPError:
        pass
    finally:
        await response.aclose()
    return bytes(body[:_ERROR_BODY_LIMIT])


def _origin(url: httpx.URL) -> Origin:
    return (url.scheme, url.host, url.port or _DEFAULT_PORTS.get(url.scheme, 0))


def _path(value: str) -> str:
    return quote(value, safe="/:@")


def _pull_scope(repo: str) -> str:
    return f"repository:{repo}:pull"


def _push_scope(repo: str) -> str:
    return f"repository:{repo}:pull,push"


def _accept(accept: Sequence[str]) -> dict[str, str]:
    return {"Accept": ", ".join(accept)} if accept else {}


def _int_header(response: httpx.Response, name: str) -> int | None:
    return ascii_int(response.headers.get(name))
