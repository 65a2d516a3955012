"""GET/HEAD/DELETE /v2/<name>/blobs/<digest> (uploads are in `uploads_api`)."""

from __future__ import annotations

from starlette.types import ASGIApp

from mirror.digests import Digest
from mirror.proxy.blobresponse import BlobResponse
from mirror.proxy.call import Call
from mirror.proxy.ranges import parse_range


async def get_blob(call: Call) -> ASGIApp:
    digest = Digest.parse(call.params["digest"])
    view = call.resolve().view
    content = await view.blob(digest)
    call.warn(content.warning)
    requested = call.request.headers.get("range")
    if requested is None and not content.downloading:
        # registry:2's storage.redirect: the whole stored blob straight from the store.
        url = await call.services.store.blobs.redirect_url(digest)
        if url is not None:
            call.headers["Location"] = url
            call.headers["Docker-Content-Digest"] = str(digest)
            return call.response(status=307)
    byte_range = parse_range(requested, content.size)
    sent = call.services.on_blob_sent
    on_sent = None if sent is None else lambda source, size: sent(source, size, view.name)
    return BlobResponse(
        content, byte_range, call.headers, on_sent=on_sent, tracker=call.services.store.tracker
    )


async def head_blob(call: Call) -> ASGIApp:
    digest = Digest.parse(call.params["digest"])
    view = call.resolve().view
    head = await view.blob_info(digest)
    call.warn(head.warning)
    call.headers["Docker-Content-Digest"] = str(digest)
    call.headers["Accept-Ranges"] = "bytes"
    call.headers["ETag"] = f'"{digest}"'
    return call.response(media_type="application/octet-stream", length=head.size)


async def delete_blob(call: Call) -> ASGIApp:
    digest = Digest.parse(call.params["digest"])
    view = call.resolve().view
    await view.delete_blob(digest)
    return call.response(status=202)
