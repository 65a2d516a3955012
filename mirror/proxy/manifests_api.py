"""GET/HEAD/PUT/DELETE /v2/<name>/manifests/<reference>."""

from __future__ import annotations

from starlette.types import ASGIApp

from mirror.proxy.call import Call
from mirror.types import MAX_MANIFEST_SIZE, Reference


async def get_manifest(call: Call) -> ASGIApp:
    reference = Reference.parse(call.params["reference"])
    view = call.resolve().view
    result = await view.get_manifest(reference)
    call.warn(result.warning)
    m = result.manifest
    call.headers["Docker-Content-Digest"] = str(m.digest)
    call.headers["ETag"] = f'"{m.digest}"'
    return call.response(m.raw, media_type=m.media_type)


async def head_manifest(call: Call) -> ASGIApp:
    reference = Reference.parse(call.params["reference"])
    view = call.resolve().view
    head = await view.head_manifest(reference)
    call.warn(head.warning)
    d = head.descriptor
    call.headers["Docker-Content-Digest"] = str(d.digest)
    call.headers["ETag"] = f'"{d.digest}"'
    return call.response(media_type=d.media_type, length=d.size)


async def put_manifest(call: Call) -> ASGIApp:
    reference = Reference.parse(call.params["reference"])
    view = call.resolve().view
    raw = await call.read_body(MAX_MANIFEST_SIZE)
    stored = await view.put_manifest(reference, raw, call.request.headers.get("content-type"))
    call.headers["Docker-Content-Digest"] = str(stored.digest)
    call.headers["Location"] = call.url(f"/v2/{call.name}/manifests/{stored.digest}")
    if stored.subject is not None:
        call.headers["OCI-Subject"] = str(stored.subject.digest)
    return call.response(status=201)


async def delete_manifest(call: Call) -> ASGIApp:
    reference = Reference.parse(call.params["reference"])
    view = call.resolve().view
    await view.delete_manifest(reference)
    return call.response(status=202)
