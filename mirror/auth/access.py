"""What a request asks for and what it was granted: the value types of access control.

An `Access` is one (resource type, resource name, action) triple, the unit the token
spec's `scope` and `access` claims are made of: `repository:team/app:pull`,
`registry:catalog:*`. A `Grant` is who made the request and what it may do.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

REPOSITORY = "repository"
REGISTRY = "registry"
CATALOG = "catalog"

PULL = "pull"
PUSH = "push"
DELETE = "delete"
# In a grant `*` stands for every action; in a request it is an action of its own
# (`registry:catalog:*`), which only a grant of `*` satisfies.
ANY_ACTION = "*"
REPOSITORY_ACTIONS = frozenset({PULL, PUSH, DELETE})


@dataclass(frozen=True, slots=True)
class Access:
    """One action on one named resource, e.g. `Access("repository", "team/app", "pull")`."""

    type: str
    name: str
    action: str

    @property
    def scope(self) -> str:
        """`type:name:action`, the token spec's resource scope for this access alone."""
        return f"{self.type}:{self.name}:{self.action}"

    def detail(self) -> dict[str, str]:
        """The entry registry:2 puts in an UNAUTHORIZED error's `detail` list."""
        return {"Type": self.type, "Name": self.name, "Action": self.action}


def repository(name: str, *actions: str) -> tuple[Access, ...]:
    """`Access` values for `actions` on repository `name`."""
    return tuple(Access(REPOSITORY, name, action) for action in actions)


def scope_param(accesses: Iterable[Access]) -> str:
    """The challenge's `scope`: one `type:name:a,b` per resource, space-separated.

    Resources keep the order of their first access; actions are not repeated.
    """
    grouped: dict[tuple[str, str], list[str]] = {}
    for access in accesses:
        actions = grouped.setdefault((access.type, access.name), [])
        if access.action not in actions:
            actions.append(access.action)
    return " ".join(f"{kind}:{name}:{','.join(acts)}" for (kind, name), acts in grouped.items())


@dataclass(frozen=True, slots=True)
class Grant:
    """The outcome of a successful check.

    `user` is the authenticated name, or None for an anonymous request; `groups` are the
    user's groups in the access policy (empty when there is none); `accesses` are the
    requested accesses, all of which were granted.
    """

    user: str | None
    groups: frozenset[str] = frozenset()
    accesses: tuple[Access, ...] = ()

    @property
    def anonymous(self) -> bool:
        return self.user is None


@dataclass(frozen=True, slots=True)
class AuthRequest:
    """What an access controller may look at in a request.

    `authorization` is the `Authorization` header (several of them joined with ", ", as
    HTTP combines repeated fields, which no scheme accepts); `host` and `forwarded_proto`
    (`Host`, `X-Forwarded-Proto`) are only used to build an auto-redirect realm.
    """

    authorization: str | None = None
    host: str = ""
    forwarded_proto: str | None = None

    @classmethod
    def from_asgi_headers(cls, headers: Sequence[tuple[bytes, bytes]]) -> AuthRequest:
        """Build from an ASGI scope's raw `headers` (names lower-case, values latin-1)."""
        authorization: list[str] = []
        host = ""
        proto: str | None = None
        for raw_name, raw_value in headers:
            name = raw_name.lower()
            if name == b"authorization":
                authorization.append(raw_value.decode("latin-1"))
            elif name == b"host" and not host:
                host = raw_value.decode("latin-1")
            elif name == b"x-forwarded-proto" and proto is None:
                proto = raw_value.decode("latin-1")
        return cls(", ".join(authorization) if authorization else None, host, proto)
