"""Blobs and blob uploads: /v2/<name>/blobs/... ."""

from __future__ import annotations

import re

from starlette.types import ASGIApp

from mirror.digests import Digest
from mirror.errors import BlobUploadInvalid, DigestInvalid, RegistryError
from mirror.proxy.blobresponse import BlobResponse
from mirror.proxy.call import Call
from mirror.proxy.ranges import parse_range
from mirror.store.uploads import UploadStatus

_CONTENT_RANGE = re.compile(r"^(?:bytes[ =])?(\d+)-(\d+)(?:/(?:\d+|\*))?$")


async def blob(call: Call) -> ASGIApp:
    digest = Digest.parse(call.params["digest"])
    view = call.resolve().view
    if call.request.method == "DELETE":
        await view.delete_blob(digest)
        return call.response(status=202)
    if call.head:
        head = await view.blob_info(digest)
        call.warn(head.warning)
        call.headers["Docker-Content-Digest"] = str(digest)
        call.headers["Accept-Ranges"] = "bytes"
        call.headers["ETag"] = f'"{digest}"'
        return call.response(media_type="application/octet-stream", length=head.size)
    content = await view.blob(digest)
    call.warn(content.warning)
    byte_range = parse_range(call.request.headers.get("range"), content.size)
    return BlobResponse(content, byte_range, call.headers, on_sent=call.services.on_blob_sent)


def _upload_headers(call: Call, status: UploadStatus) -> None:
    call.headers["Location"] = call.url(f"/v2/{call.name}/blobs/uploads/{status.id}")
    call.headers["Range"] = f"0-{max(status.size - 1, 0)}"
    call.headers["Docker-Upload-UUID"] = status.id


def _blob_created(call: Call, digest: Digest) -> ASGIApp:
    call.headers["Location"] = call.url(f"/v2/{call.name}/blobs/{digest}")
    call.headers["Docker-Content-Digest"] = str(digest)
    return call.response(status=201)


def _mount_source(call: Call, source: str | None) -> str | None:
    """The stored name of the `from` repository; "" when it names nothing (no mount)."""
    if source is None:
        return None
    try:
        return call.services.resolver.resolve(source, None).view.name
    except RegistryError:
        return ""


def _content_length(call: Call) -> int | None:
    value = call.request.headers.get("content-length")
    if value is None:
        return None
    if not value.isdigit():
        raise BlobUploadInvalid(f"invalid Content-Length {value[:40]!r}")
    return int(value)


async def upload_start(call: Call) -> ASGIApp:
    view = call.resolve().view
    query = call.request.query_params
    mount = query.get("mount")
    if mount is not None:
        digest = Digest.parse(mount)
        source = _mount_source(call, query.get("from"))
        if source != "" and await view.mount(digest, source) is not None:
            return _blob_created(call, digest)
    uploads = view.uploads()
    status = await uploads.start()
    monolithic = query.get("digest")
    if monolithic is not None:
        digest = Digest.parse(monolithic)
        info = await uploads.finish(status.id, digest, call.body(), length=_content_length(call))
        return _blob_created(call, info.digest)
    _upload_headers(call, status)
    call.headers["OCI-Chunk-Min-Length"] = str(call.services.chunk_min_length)
    return call.response(status=202)


async def upload(call: Call) -> ASGIApp:
    uploads = call.resolve().view.uploads()
    upload_id = call.params["upload"]
    method = call.request.method
    if method == "GET":
        _upload_headers(call, await uploads.status(upload_id))
        return call.response(status=204)
    if method == "DELETE":
        await uploads.cancel(upload_id)
        return call.response(status=204)
    length = _content_length(call)
    if method == "PATCH":
        start = _chunk_start(call.request.headers.get("content-range"), length)
        status = await uploads.append(upload_id, call.body(), start=start, length=length)
        _upload_headers(call, status)
        return call.response(status=202)
    digest_param = call.request.query_params.get("digest")
    if not digest_param:
        raise DigestInvalid("the digest query parameter is required to finish an upload")
    digest = Digest.parse(digest_param)
    body = call.body() if length != 0 else None
    start = _chunk_start(call.request.headers.get("content-range"), length)
    if start is not None and body is not None:
        await uploads.append(upload_id, body, start=start, length=length)
        body = None
    info = await uploads.finish(upload_id, digest, body, length=length)
    return _blob_created(call, info.digest)


def _chunk_start(header: str | None, length: int | None) -> int | None:
    """The offset a chunk's Content-Range says it starts at (None when absent)."""
    if not header:
        return None
    found = _CONTENT_RANGE.match(header.strip())
    if found is None:
        raise BlobUploadInvalid(f"invalid Content-Range {header[:60]!r}")
    start, end = int(found.group(1)), int(found.group(2))
    if end < start or (length is not None and end - start + 1 != length):
        raise BlobUploadInvalid(f"Content-Range {header[:60]!r} does not match the body length")
    return start
