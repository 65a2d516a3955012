"""The routing table: which upstream (if any) serves a requested repository name.

Three ways in, checked in this order:

1. containerd's `?ns=<registry>`: the namespace names an upstream (by name or alias);
2. a path prefix: `/v2/<upstream>/<repo>/...` where the first component is an upstream;
3. the default upstream, for plain names (what a Docker daemon's `registry-mirrors`
   sends) - unless the name falls under a local namespace, or there is no default.

Names and namespaces are only ever looked up in the configured table, never dialled.
Docker Hub's official images live under `library/`: `alpine` means `library/alpine`.
Cached content of an upstream is stored under `<prefix>/<remote name>`, so every way in
shares one copy (`alpine` via the default, `library/alpine?ns=docker.io` and
`docker.io/library/alpine` are the same repository).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mirror.errors import NameUnknown
from mirror.types import validate_name

DOCKER_HUB = "docker.io"


@dataclass(frozen=True, slots=True)
class UpstreamRoute:
    """One upstream as the routing table sees it."""

    name: str
    aliases: tuple[str, ...] = ()

    @property
    def prefix(self) -> str:
        """The first component of stored repository names (a valid name component)."""
        return self.name.lower().replace(":", "-")

    @property
    def is_docker_hub(self) -> bool:
        return self.name.lower() == DOCKER_HUB


@dataclass(frozen=True, slots=True)
class RouteMatch:
    """Where a request goes: `upstream` None means a local repository named `local_name`."""

    upstream: UpstreamRoute | None
    local_name: str
    remote_name: str = ""
    namespace: str | None = None


class RoutingTable:
    def __init__(
        self,
        upstreams: Sequence[UpstreamRoute],
        *,
        default: str | None = None,
        local_prefixes: Sequence[str] = (),
    ) -> None:
        self.upstreams = tuple(upstreams)
        self._by_key: dict[str, UpstreamRoute] = {}
        for route in self.upstreams:
            for key in (route.name, *route.aliases, route.prefix):
                self._by_key.setdefault(key.lower(), route)
        self.default = self._by_key.get(default.lower()) if default else None
        if default and self.default is None:
            raise ValueError(f"default upstream {default!r} is not configured")
        self.local_prefixes = tuple(p.rstrip("/") for p in local_prefixes if p.strip("/"))

    def lookup(self, key: str) -> UpstreamRoute | None:
        return self._by_key.get(key.lower())

    def _is_local(self, name: str) -> bool:
        return any(name == p or name.startswith(p + "/") for p in self.local_prefixes)

    def route(self, name: str, namespace: str | None = None) -> RouteMatch:
        """Route a requested name; raise NameInvalid or NameUnknown (unconfigured `ns`)."""
        validate_name(name)
        if namespace:
            upstream = self.lookup(namespace)
            if upstream is None:
                raise NameUnknown(f"registry {namespace[:100]!r} is not configured on this mirror")
            return self._proxied(upstream, name, namespace)
        first, sep, rest = name.partition("/")
        if sep:
            upstream = self.lookup(first)
            if upstream is not None:
                return self._proxied(upstream, rest, None)
        if self.default is None or self._is_local(name):
            return RouteMatch(None, name)
        return self._proxied(self.default, name, None)

    def _proxied(self, upstream: UpstreamRoute, remote: str, namespace: str | None) -> RouteMatch:
        if upstream.is_docker_hub and "/" not in remote:
            remote = f"library/{remote}"
        local = validate_name(f"{upstream.prefix}/{remote}")
        return RouteMatch(upstream, local, remote, namespace)
