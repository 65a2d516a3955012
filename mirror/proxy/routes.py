"""URL patterns of the distribution API, matched with one pass of precompiled regexes."""

from __future__ import annotations

import re
from dataclasses import dataclass

_NAME = r"(?P<name>[^?]+?)"


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    pattern: re.Pattern[str]
    methods: frozenset[str]


def _route(name: str, pattern: str, *methods: str) -> Route:
    return Route(name, re.compile(pattern), frozenset(methods))


ROUTES: tuple[Route, ...] = (
    _route("base", r"^/v2/?$", "GET", "HEAD"),
    _route("catalog", r"^/v2/_catalog$", "GET", "HEAD"),
    _route(
        "manifest", rf"^/v2/{_NAME}/manifests/(?P<reference>[^/]+)$", "GET", "HEAD", "PUT", "DELETE"
    ),
    _route("upload_start", rf"^/v2/{_NAME}/blobs/uploads/?$", "POST"),
    _route(
        "upload", rf"^/v2/{_NAME}/blobs/uploads/(?P<upload>[^/]+)$", "GET", "PATCH", "PUT", "DELETE"
    ),
    _route("blob", rf"^/v2/{_NAME}/blobs/(?P<digest>[^/]+)$", "GET", "HEAD", "DELETE"),
    _route("tags", rf"^/v2/{_NAME}/tags/list$", "GET", "HEAD"),
    _route("referrers", rf"^/v2/{_NAME}/referrers/(?P<digest>[^/]+)$", "GET", "HEAD"),
)


def match(path: str) -> tuple[Route, dict[str, str]] | None:
    """The first route whose pattern matches `path`, with its parameters."""
    if not path.startswith("/v2"):
        return None
    for route in ROUTES:
        found = route.pattern.match(path)
        if found is not None:
            return route, found.groupdict()
    return None
