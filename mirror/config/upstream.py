"""One upstream registry of the pull-through mirror: where it is, how to log in, how fresh.

Names and aliases are the lookup keys for containerd's `?ns=` and for path prefixes; they
are never dialled.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit

from mirror.config.addresses import RegistryName, RegistryNames, RemoteURL, http_url
from mirror.durations import WEEK
from mirror.settings import Duration, Flag, Secret, Text, prepare, setting, settings, within

DOCKER_HUB: Final = "docker.io"
DOCKER_HUB_HOSTS: Final = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
DOCKER_HUB_ALIASES: Final = ("index.docker.io", "registry-1.docker.io")


@settings
class UpstreamConfig:
    name: RegistryName = setting(
        doc="the registry host it mirrors (`ghcr.io`, `host:5000`): `?ns=` or a path prefix "
        "names it"
    )
    remote_url: RemoteURL = setting(
        key="remoteurl",
        doc="where to connect: an absolute http(s) URL, without credentials, query or fragment",
    )
    aliases: RegistryNames = setting(
        default=(),
        doc="further names that select it (for `docker.io` by default `index.docker.io`, "
        "`registry-1.docker.io`)",
    )
    username: Text = setting(default="", doc="account at the upstream (token or basic auth)")
    password: Secret = setting(default="", doc="its password or token")
    freshness: Duration = setting(
        default=300.0,
        doc="how long a tag is served with no upstream request; after it, one HEAD checks it",
    )
    ttl: Duration = setting(
        default=WEEK,
        doc="registry:2's retention of cached content: an image not used for this long is "
        "removed (every use renews it; 0: forever)",
    )
    offline: Flag = setting(default=False, doc="serve from cache only, never contact it")

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)

    @classmethod
    def arrange(cls, data: dict[str, object]) -> dict[str, object]:
        """Docker Hub answers to its other host names unless the aliases say otherwise."""
        ready = prepare(cls, data)
        # registry:2 reads remoteurl first: its problems come before the name's.
        within(RemoteURL, ready.get("remoteurl", ""), "remoteurl")
        name = ready.get("name")
        if "aliases" not in ready and isinstance(name, str) and name.lower() == DOCKER_HUB:
            ready["aliases"] = DOCKER_HUB_ALIASES
        return ready


def name_from_url(remote: object) -> str | None:
    """The registry name `remote` (a remoteurl as written) serves, if it is a valid URL."""
    url = http_url(remote) if isinstance(remote, str) else None
    if url is None:
        return None
    parts = urlsplit(url)
    host = parts.hostname or ""
    if host in DOCKER_HUB_HOSTS:
        return DOCKER_HUB
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{parts.port}" if parts.port is not None else host
