"""Blob uploads: POST /v2/<name>/blobs/uploads/ and GET/PATCH/PUT/DELETE of one session."""

from __future__ import annotations

import re

from starlette.types import ASGIApp

from mirror.digests import Digest
from mirror.errors import BlobUploadInvalid, DigestInvalid, RegistryError
from mirror.proxy.call import Call
from mirror.proxy.inputs import HUGE, plain_number
from mirror.store.uploads import UploadStatus

_CONTENT_RANGE = re.compile(r"^(?:bytes[ =])?([0-9]+)-([0-9]+)(?:/(?:[0-9]+|\*))?$")


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
    length = plain_number(value)
    if length is None:
        raise BlobUploadInvalid(f"invalid Content-Length {value[:40]!r}")
    return length


def _chunk_start(header: str | None, length: int | None) -> int | None:
    """The offset a chunk's Content-Range says it starts at (None when absent)."""
    if not header:
        return None
    found = _CONTENT_RANGE.fullmatch(header.strip())
    if found is None:
        raise BlobUploadInvalid(f"invalid Content-Range {header[:60]!r}")
    start, end = plain_number(found.group(1)), plain_number(found.group(2))
    assert start is not None and end is not None  # the pattern matched digits
    if HUGE in (start, end):
        raise BlobUploadInvalid(f"Content-Range {header[:60]!r} is beyond any blob")
    if end < start or (length is not None and end - start + 1 != length):
        raise BlobUploadInvalid(f"Content-Range {header[:60]!r} does not match the body length")
    return start


async def start_upload(call: Call) -> ASGIApp:
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


async def upload_status(call: Call) -> ASGIApp:
    uploads = call.resolve().view.uploads()
    _upload_headers(call, await uploads.status(call.params["upload"]))
    return call.response(status=204)


async def cancel_upload(call: Call) -> ASGIApp:
    uploads = call.resolve().view.uploads()
    await uploads.cancel(call.params["upload"])
    return call.response(status=204)


async def append_chunk(call: Call) -> ASGIApp:
    uploads = call.resolve().view.uploads()
    length = _content_length(call)
    start = _chunk_start(call.request.headers.get("content-range"), length)
    status = await uploads.append(call.params["upload"], call.body(), start=start, length=length)
    _upload_headers(call, status)
    return call.response(status=202)


async def finish_upload(call: Call) -> ASGIApp:
    uploads = call.resolve().view.uploads()
    upload_id = call.params["upload"]
    length = _content_length(call)
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
