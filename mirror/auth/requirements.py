"""What each request of the distribution API needs, as registry:2 decides it.

A pure function of the request's method, the kind of route it matched, the repository
name and a mount's source repository, so the route table can call it without touching
the request. The rules are the reference registry's:

- `GET`/`HEAD` on a repository route: `pull`;
- `POST`/`PUT`/`PATCH`: `pull` and `push` (a push reads what it links to);
- `DELETE` (manifests, blobs, and cancelling an upload): `delete`;
- a cross-repository mount (`POST .../blobs/uploads/?mount=&from=SRC`): also `pull` on SRC;
- `/v2/_catalog`: `registry:catalog:*`;
- `/v2/`: nothing, so a controller only checks the credentials (and challenges without a
  scope when there are none).

Any other method on a repository route (the route table answers those with 405 before
asking) needs every repository action: an unknown request is never cheaper to make.
"""

from __future__ import annotations

from typing import Literal

from mirror.auth.access import (
    ANY_ACTION,
    CATALOG,
    DELETE,
    PULL,
    PUSH,
    REGISTRY,
    Access,
    repository,
)

RouteKind = Literal["base", "catalog", "repository"]

_ACTIONS: dict[str, tuple[str, ...]] = {
    "GET": (PULL,),
    "HEAD": (PULL,),
    "POST": (PULL, PUSH),
    "PUT": (PULL, PUSH),
    "PATCH": (PULL, PUSH),
    "DELETE": (DELETE,),
}
_UNKNOWN_METHOD = (PULL, PUSH, DELETE)


def required_accesses(
    method: str,
    kind: RouteKind,
    name: str | None = None,
    mount_from: str | None = None,
) -> tuple[Access, ...]:
    """The accesses a request needs, in a stable order (the challenge's scope order).

    `name` is required for `kind="repository"` (ValueError without it); `mount_from` is
    the `from` parameter of a mount, if any.
    """
    if kind == "base":
        return ()
    if kind == "catalog":
        return (Access(REGISTRY, CATALOG, ANY_ACTION),)
    if not name:
        raise ValueError("a repository route needs a repository name")
    needed = repository(name, *_ACTIONS.get(method.upper(), _UNKNOWN_METHOD))
    if mount_from and mount_from != name:
        needed += repository(mount_from, PULL)
    return needed
