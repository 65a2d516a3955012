"""One upstream registry of the pull-through mirror: where it is, how to log in, how fresh.

Names and aliases are the lookup keys for containerd's `?ns=` and for path prefixes; they
are never dialled.
"""

from __future__ import annotations

import os
from typing import Final
from urllib.parse import urlsplit

from pydantic import model_validator

from mirror.config.addresses import RegistryName, RegistryNames, RemoteURL, http_url
from mirror.durations import WEEK
from mirror.settings import (
    Duration,
    Flag,
    Integer,
    Problem,
    Secret,
    Text,
    prepare,
    setting,
    settings,
    within,
)

DOCKER_HUB: Final = "docker.io"
DOCKER_HUB_HOSTS: Final = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
DOCKER_HUB_ALIASES: Final = ("index.docker.io", "registry-1.docker.io")


@settings
class UpstreamTLSConfig:
    """How the upstream's TLS is trusted, and the certificate mirror presents to it."""

    ca: Text = setting(
        default="",
        doc="PEM CA bundle the upstream's certificate must chain to (instead of the public "
        "CAs): an internal registry with a private CA",
    )
    certificate: Text = setting(default="", doc="PEM client certificate presented to it")
    key: Text = setting(default="", doc="the client certificate's PEM private key")
    insecure: Flag = setting(
        default=False,
        doc="do not verify its TLS certificate (a self-signed test registry; never across a "
        "network you do not trust). Plain HTTP needs no switch: write an `http://` remoteurl",
    )

    @model_validator(mode="after")
    def _files(self) -> UpstreamTLSConfig:
        if bool(self.certificate) != bool(self.key):
            missing = "key" if self.certificate else "certificate"
            raise Problem("missing: a client certificate needs certificate and key", (missing,))
        for name in ("ca", "certificate", "key"):
            path = getattr(self, name)
            if path and not os.path.isfile(path):
                raise Problem(f"file not found: {path}", (name,))
        return self


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
    prefetch: Flag = setting(
        default=True,
        doc="when an image manifest is fetched from it, start downloading the blobs it "
        "names that are not cached, before the client asks (its GETs join those downloads)",
    )
    prefetch_concurrency: Integer = setting(
        key="prefetchconcurrency",
        default=3,
        ge=1,
        doc="how many blobs prefetch downloads at once from this upstream",
    )
    tls: UpstreamTLSConfig = setting(
        default_factory=UpstreamTLSConfig, doc="how its TLS is trusted (https remoteurls)"
    )

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
