"""The seam between the front end and authentication: the `AccessController` protocol.

The front end computes what a request needs (`required_accesses`), builds an
`AuthRequest` from its headers, and awaits `authorized(request, accesses)`: a `Grant`
means go on; a `Challenge` (an `Unauthorized` domain error) is rendered as a 401 with
its `WWW-Authenticate` header. Controllers are built by name from plain parameters
(`mirror.auth.registry`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from mirror.auth.access import REPOSITORY, Access, AuthRequest, Grant
from mirror.auth.requirements import RouteKind, required_accesses

NameKey = Callable[[str], str]


class AccessController(Protocol):
    """Decides whether a request may have the accesses it needs."""

    async def authorized(self, request: AuthRequest, accesses: Sequence[Access]) -> Grant:
        """A Grant naming who asked, when every access in `accesses` is allowed.

        Raises `Challenge` (401) when credentials are missing, malformed or wrong, or do
        not allow one of `accesses`; its `missing` lists those. With no accesses (the
        `/v2/` base route) only the credentials are checked. Never raises anything else
        for any header content; safe to call concurrently; no side effect but caches.
        """
        ...


def policy_names(accesses: Sequence[Access], name_key: NameKey | None) -> list[Access]:
    """`accesses` with repository names mapped by `name_key`, the name the policy judges
    (for example the stored name `docker.io/library/alpine` of a plain `alpine`)."""
    if name_key is None:
        return list(accesses)
    return [
        Access(a.type, name_key(a.name), a.action) if a.type == REPOSITORY else a for a in accesses
    ]


async def authorize(
    controller: AccessController,
    headers: Sequence[tuple[bytes, bytes]],
    method: str,
    kind: RouteKind,
    *,
    name: str | None = None,
    mount_from: str | None = None,
) -> Grant:
    """What the front end calls once per request: the accesses the request needs, checked
    against the request's raw ASGI `headers`; raises `Challenge` like `authorized`."""
    accesses = required_accesses(method, kind, name, mount_from)
    return await controller.authorized(AuthRequest.from_asgi_headers(headers), accesses)
