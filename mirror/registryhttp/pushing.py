"""`PushOperations`: the push side of the Registry API V2 against one registry.

Manifests are PUT and DELETEd; blobs are uploaded in a session (`start_upload` - or
mounted from another repository -, `upload_chunk`, `upload_status` to resume,
`finish_upload`). Upload bodies may be streams; a stream is sent once, never retried or
replayed. `mirror.client` and its CLI verbs push through `DistributionClient`, which
adds the pull side (`registryhttp.client`).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable
from dataclasses import dataclass
from urllib.parse import quote

import httpx

from mirror.digests import Digest
from mirror.registryhttp.errors import UpstreamContentError, UpstreamError, UpstreamUnavailable
from mirror.registryhttp.headers import digest_header
from mirror.registryhttp.session import (
    RegistrySession,
    discard,
    final,
    log,
    pull_scope,
    push_scope,
    url_path,
)

# An upload's `Range: 0-<last byte>` (Distribution says `0--1` before the first byte).
_UPLOAD_RANGE = re.compile(r"^(?:bytes=)?0-(-1|\d+)$", re.ASCII)
OCTET_STREAM = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class StoredManifest:
    """A manifest PUT's answer: its digest, and the `OCI-Subject` header - a registry
    with the referrers API names the subject it indexed the manifest under."""

    digest: Digest
    subject: Digest | None


@dataclass(frozen=True, slots=True)
class Upload:
    """A blob upload session: where to send the next request, and how much is stored."""

    repo: str
    location: str
    offset: int = 0


class PushOperations(RegistrySession):
    """Manifest PUT/DELETE and blob upload sessions (see the module docstring)."""

    async def put_manifest(
        self, repo: str, reference: str, raw: bytes, media_type: str
    ) -> StoredManifest:
        """PUT a manifest's exact bytes under a tag or its digest.

        Raises UpstreamContentError when the registry says another digest."""
        digest = Digest.of(raw)
        path = f"/v2/{url_path(repo)}/manifests/{url_path(reference)}"

        async def once() -> tuple[Digest | None, Digest | None]:
            headers = {"Content-Type": media_type}
            response = await self._once("PUT", path, push_scope(repo), headers, content=raw)
            await discard(response)
            said = digest_header(response.headers.get("docker-content-digest"))
            return said, digest_header(response.headers.get("oci-subject"))

        said, subject = await self._retry(once)
        if said is not None and said.algorithm == digest.algorithm and said != digest:
            raise UpstreamContentError(f"{self.name}: {repo}: registry stored {said}, not {digest}")
        return StoredManifest(digest, subject)

    async def delete_manifest(self, repo: str, digest: Digest) -> None:
        """DELETE a manifest by digest (every tag on it goes). Raises UpstreamNotFound."""
        path = f"/v2/{url_path(repo)}/manifests/{digest}"

        async def once() -> None:
            await discard(await self._once("DELETE", path, f"repository:{repo}:delete", {}))

        await self._retry(once)

    async def start_upload(
        self, repo: str, *, mount: Digest | None = None, source: str | None = None
    ) -> Upload | None:
        """Open an upload session (POST). With `mount` and `source`, ask the registry to
        mount that blob from the `source` repository instead: None means it did (201)."""
        path = f"/v2/{url_path(repo)}/blobs/uploads/"
        scope = push_scope(repo)
        if mount is not None and source is not None:
            path += f"?mount={mount}&from={quote(source, safe='/')}"
            scope += f" {pull_scope(source)}"

        async def once() -> Upload | None:
            response = await self._once("POST", path, scope, {"Content-Length": "0"})
            await discard(response)
            if response.status_code == 201 and mount is not None:
                return None
            return self._upload(response, repo, 0)

        return await self._retry(once)

    async def upload_status(self, upload: Upload) -> Upload:
        """Ask where an interrupted upload stands (GET on its location): the stored length."""

        async def once() -> Upload:
            response = await self._once(
                "GET", "", push_scope(upload.repo), {}, url=self._location(upload)
            )
            await discard(response)
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
        response = await final(
            self._once(
                "PATCH",
                "",
                push_scope(upload.repo),
                headers,
                content=chunks,
                url=self._location(upload),
            )
        )
        await discard(response)
        return self._upload(response, upload.repo, None, upload.location)

    async def cancel_upload(self, upload: Upload) -> None:
        """DELETE an upload session nobody will finish; failures are only logged."""
        try:
            url = self._location(upload)
            await discard(
                await final(self._once("DELETE", "", push_scope(upload.repo), {}, url=url))
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
        response = await final(
            self._once("PUT", "", push_scope(upload.repo), headers, content=chunks, url=url)
        )
        await discard(response)
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
