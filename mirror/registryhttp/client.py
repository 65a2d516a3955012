"""`DistributionClient`: Registry API V2 against one registry, pull side and push side.

The pull side is here: ping, manifests (HEAD/GET, verified against their digests), tag
lists and the catalog (following `Link` pages), referrers, blob HEAD and streamed blob
GETs (`UpstreamBlob`, ranged or verified). The push side comes from `PushOperations`
(`registryhttp.pushing`), the HTTP exchange - retries, auth, redirects - from
`RegistrySession` (`registryhttp.session`). Everything returned is plain data
(dataclasses, bytes); every failure is an UpstreamError.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote

import httpx

from mirror.digests import Digest, is_digest
from mirror.errors import DigestInvalid, Unsupported
from mirror.registryhttp.blob import UpstreamBlob
from mirror.registryhttp.errors import UpstreamContentError, UpstreamError, UpstreamUnavailable
from mirror.registryhttp.headers import digest_header, media_type, next_page
from mirror.registryhttp.pushing import PushOperations, StoredManifest, Upload
from mirror.registryhttp.session import (
    MANIFEST_BODY_LIMIT,
    USER_AGENT,
    RateLimit,
    accept_header,
    discard,
    int_header,
    pull_scope,
    url_path,
)
from mirror.types import OCI_INDEX

__all__ = [
    "MANIFEST_BODY_LIMIT",
    "USER_AGENT",
    "DistributionClient",
    "FetchedManifest",
    "ManifestHead",
    "RateLimit",
    "StoredManifest",
    "Upload",
]

TAGS_PAGE = 1000
TAGS_LIMIT = 10_000
CATALOG_LIMIT = 100_000
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$", re.ASCII)


@dataclass(frozen=True, slots=True)
class ManifestHead:
    """What a manifest HEAD tells: digest (Docker-Content-Digest), media type and size."""

    digest: Digest | None
    media_type: str
    size: int | None


@dataclass(frozen=True, slots=True)
class FetchedManifest:
    """A fetched manifest: exact bytes, Content-Type without parameters, header digest."""

    raw: bytes
    media_type: str
    digest: Digest | None


class DistributionClient(PushOperations):
    """A client for one registry (an upstream, or a `mirror.client` target). Close it
    with `aclose()`; the constructor's options are `RegistrySession`'s."""

    async def ping(self) -> None:
        """GET /v2/ (with the auth flow); return when the registry answers 2xx.

        Raises UpstreamAuthError when credentials are refused, otherwise another UpstreamError.
        """

        async def once() -> None:
            response = await self._once("GET", "/v2/", "", {})
            await discard(response)

        await self._retry(once)

    async def head_manifest(self, repo: str, reference: str, accept: Sequence[str]) -> ManifestHead:
        """HEAD a manifest by tag or digest. Raises UpstreamNotFound on 404.

        A missing or malformed Docker-Content-Digest gives `digest=None`.
        """
        path = f"/v2/{url_path(repo)}/manifests/{url_path(reference)}"

        async def once() -> ManifestHead:
            response = await self._once("HEAD", path, pull_scope(repo), accept_header(accept))
            await discard(response)
            return ManifestHead(
                digest=digest_header(response.headers.get("docker-content-digest")),
                media_type=media_type(response.headers.get("content-type")),
                size=int_header(response, "content-length"),
            )

        return await self._retry(once)

    async def get_manifest(
        self, repo: str, reference: str, accept: Sequence[str]
    ) -> FetchedManifest:
        """GET a manifest by tag or digest. Raises UpstreamNotFound on 404.

        Raises UpstreamContentError when the body exceeds MANIFEST_BODY_LIMIT, or does not
        hash to the requested digest or to the Docker-Content-Digest header.
        """
        path = f"/v2/{url_path(repo)}/manifests/{url_path(reference)}"

        async def once() -> FetchedManifest:
            response = await self._once("GET", path, pull_scope(repo), accept_header(accept))
            try:
                raw = await self._read_limited(response)
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
        path: str | None = f"/v2/{url_path(repo)}/tags/list?n={TAGS_PAGE}"
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
        return await self._list_page(pull_scope(repo), path)

    async def _list_page(self, scope: str, path: str) -> tuple[bytes, str | None]:
        response = await self._once("GET", path, scope, {})
        try:
            body = await self._read_limited(response)
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
        path = f"/v2/{url_path(repo)}/referrers/{digest}"
        if artifact_type:
            path += f"?artifactType={quote(artifact_type, safe='')}"

        async def once() -> bytes:
            response = await self._once("GET", path, pull_scope(repo), {"Accept": OCI_INDEX})
            try:
                return await self._read_limited(response)
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
        path = f"/v2/{url_path(repo)}/blobs/{digest}"

        async def once() -> int | None:
            response = await self._once("HEAD", path, pull_scope(repo), {})
            await discard(response)
            return int_header(response, "content-length")

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
        path = f"/v2/{url_path(repo)}/blobs/{digest}"
        # Blobs are stored byte for byte: ask for no content coding, and decode none.
        headers = {"Accept-Encoding": "identity"}
        if length is not None:
            headers["Range"] = f"bytes={offset}-{offset + length - 1}"
        elif offset:
            headers["Range"] = f"bytes={offset}-"

        async def once() -> UpstreamBlob:
            response = await self._once("GET", path, pull_scope(repo), headers)
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
        content_length = int_header(response, "content-length")
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
