"""The base endpoint and the paginated lists: catalog, tags, referrers."""

from __future__ import annotations

import bisect
import json
from urllib.parse import quote

from starlette.types import ASGIApp

from mirror.digests import Digest
from mirror.errors import PaginationInvalid
from mirror.proxy.call import Call
from mirror.proxy.inputs import plain_number
from mirror.types import OCI_INDEX

MAX_PAGE = 10_000


async def base(call: Call) -> ASGIApp:
    return call.response(b"{}", media_type="application/json")


def _page(call: Call, items: list[str], path: str) -> list[str]:
    """Apply `n`/`last` to a sorted list; sets the Link header when more remain."""
    query = call.request.query_params
    raw_n = query.get("n")
    last = query.get("last")
    start = bisect.bisect_right(items, last) if last else 0
    if raw_n is None or raw_n == "":
        n = MAX_PAGE
    else:
        number = plain_number(raw_n)
        if number is None:
            raise PaginationInvalid(f"n must be a number of digits, got {raw_n[:20]!r}")
        n = min(number, MAX_PAGE)
    page = items[start : start + n]
    if page and start + n < len(items):
        link = call.url(f"{path}?n={n}&last={quote(page[-1], safe='')}")
        call.headers["Link"] = f'<{link}>; rel="next"'
    return page


async def catalog(call: Call) -> ASGIApp:
    names = await call.services.store.repositories()
    page = _page(call, names, "/v2/_catalog")
    return call.response(json.dumps({"repositories": page}).encode(), media_type="application/json")


async def tags(call: Call) -> ASGIApp:
    view = call.resolve().view
    result = await view.tags()
    call.warn(result.warning)
    page = _page(call, result.tags, f"/v2/{call.name}/tags/list")
    body = json.dumps({"name": call.name, "tags": page}).encode()
    return call.response(body, media_type="application/json")


async def referrers(call: Call) -> ASGIApp:
    subject = Digest.parse(call.params["digest"])
    view = call.resolve().view
    artifact_type = call.request.query_params.get("artifactType") or None
    found = await view.referrers(subject, artifact_type)
    if artifact_type is not None:
        call.headers["OCI-Filters-Applied"] = "artifactType"
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [d.to_json() for d in found],
    }
    return call.response(json.dumps(index).encode(), media_type=OCI_INDEX)
