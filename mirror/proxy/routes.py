"""The route table: each URL pattern of the distribution API, and the handler of each method.

Dispatch by method happens here and nowhere else: a path that matches no pattern is 404,
a method a matched route has no handler for is 405. Where GET and HEAD share their code
(base, catalog, tags, referrers) one handler answers both and `Call.response` leaves the
body out on HEAD; manifest and blob HEADs have their own handlers because they take a
different path (no content is fetched).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from mirror.proxy import blobs_api, lists_api, manifests_api, uploads_api
from mirror.proxy.call import Handler

_NAME = r"(?P<name>[^?]+?)"


@dataclass(frozen=True, slots=True)
class Route:
    name: str  # the route label in metrics
    pattern: re.Pattern[str]
    handlers: Mapping[str, Handler]  # method -> handler


def _route(name: str, pattern: str, handlers: Mapping[str, Handler]) -> Route:
    return Route(name, re.compile(pattern), dict(handlers))


def _get_and_head(handler: Handler) -> dict[str, Handler]:
    """One handler for GET and HEAD (the body is dropped on HEAD)."""
    return {"GET": handler, "HEAD": handler}


ROUTES: tuple[Route, ...] = (
    _route("base", r"^/v2/?$", _get_and_head(lists_api.base)),
    _route("catalog", r"^/v2/_catalog$", _get_and_head(lists_api.catalog)),
    _route(
        "manifest",
        rf"^/v2/{_NAME}/manifests/(?P<reference>[^/]+)$",
        {
            "GET": manifests_api.get_manifest,
            "HEAD": manifests_api.head_manifest,
            "PUT": manifests_api.put_manifest,
            "DELETE": manifests_api.delete_manifest,
        },
    ),
    _route("upload_start", rf"^/v2/{_NAME}/blobs/uploads/?$", {"POST": uploads_api.start_upload}),
    _route(
        "upload",
        rf"^/v2/{_NAME}/blobs/uploads/(?P<upload>[^/]+)$",
        {
            "GET": uploads_api.upload_status,
            "PATCH": uploads_api.append_chunk,
            "PUT": uploads_api.finish_upload,
            "DELETE": uploads_api.cancel_upload,
        },
    ),
    _route(
        "blob",
        rf"^/v2/{_NAME}/blobs/(?P<digest>[^/]+)$",
        {
            "GET": blobs_api.get_blob,
            "HEAD": blobs_api.head_blob,
            "DELETE": blobs_api.delete_blob,
        },
    ),
    _route("tags", rf"^/v2/{_NAME}/tags/list$", _get_and_head(lists_api.tags)),
    _route(
        "referrers",
        rf"^/v2/{_NAME}/referrers/(?P<digest>[^/]+)$",
        _get_and_head(lists_api.referrers),
    ),
)


def match(path: str) -> tuple[Route, dict[str, str]] | None:
    """The first route whose pattern matches `path`, with its parameters."""
    if not path.startswith("/v2"):
        return None
    for route in ROUTES:
        found = route.pattern.fullmatch(path)
        if found is not None:
            return route, found.groupdict()
    return None
