"""GET/HEAD/PUT/DELETE /v2/<name>/manifests/<reference>."""

from __future__ import annotations

from starlette.types import ASGIApp

from mirror.errors import ManifestUnknown, TagInvalid
from mirror.proxy.call import Call
from mirror.types import MAX_MANIFEST_SIZE, Reference


def _existing(value: str) -> Reference:
    """The reference of a manifest to look up (GET, HEAD, DELETE).

    No manifest can have a tag that is not valid, so looking one up is MANIFEST_UNKNOWN
    (404), as the reference registry answers and the OCI conformance suite expects; only a
    PUT, which would create the tag, is told TAG_INVALID. A malformed digest stays
    DIGEST_INVALID.
    """
    try:
        return Reference.parse(value)
    except TagInvalid:
        raise ManifestUnknown(f"no manifest has the invalid tag {value[:150]!r}") from None


async def get_manifest(call: Call) -> ASGIApp:
    reference = _existing(call.params["reference"])
    view = call.resolve().view
    result = await view.get_manifest(reference)
    call.warn(result.warning)
    m = result.manifest
    call.headers["Docker-Content-Digest"] = str(m.digest)
    call.headers["ETag"] = f'"{m.digest}"'
    return call.response(m.raw, media_type=m.media_type)


async def head_manifest(call: Call) -> ASGIApp:
    reference = _existing(call.params["reference"])
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
    reference = _existing(call.params["reference"])
    view = call.resolve().view
    await view.delete_manifest(reference)
    return call.response(status=202)
