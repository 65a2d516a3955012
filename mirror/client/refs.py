"""Image references as docker, crane and skopeo write them: `HOST/REPO[:TAG][@DIGEST]`.

The first path component is a registry host when it has a `.` or a `:` or is
`localhost`; otherwise the reference is Docker Hub's (`alpine` is
`docker.io/library/alpine`), whose API lives at `registry-1.docker.io`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mirror.client.errors import ReferenceInvalid
from mirror.digests import Digest
from mirror.errors import DigestInvalid, NameInvalid, TagInvalid
from mirror.types import validate_name, validate_tag

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
DEFAULT_TAG = "latest"
# A host name (labels of letters, digits and inner dashes) or an IPv4 address, or an IPv6
# address in brackets; then an optional port.
_HOST = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:.]+\])(?::(\d{1,5}))?$"
)


def validate_host(host: str) -> str:
    """Return `host` (`name[:port]`, `[v6]:port`) if it can be dialled, else raise."""
    match = _HOST.fullmatch(host)
    if match is None or (match[1] is not None and not 0 < int(match[1]) < 65536):
        raise ReferenceInvalid(f"{host[:200]!r} is not a registry host[:port]")
    return host


@dataclass(frozen=True, slots=True)
class ImageRef:
    """A repository on a registry, with a tag and/or a digest (or neither, for listings)."""

    host: str
    repository: str
    tag: str | None = None
    digest: Digest | None = None

    @classmethod
    def parse(cls, text: str, *, default_tag: str | None = DEFAULT_TAG) -> ImageRef:
        """Parse a reference (a leading `docker://` is allowed); raise ReferenceInvalid.

        Without a tag or digest the tag is `default_tag` (None: leave it out)."""
        rest = text.removeprefix("docker://")
        if not rest or rest != rest.strip():
            raise ReferenceInvalid(f"invalid image reference {text[:200]!r}")
        digest = None
        if "@" in rest:
            rest, _, digest_text = rest.partition("@")
            try:
                digest = Digest.parse(digest_text)
            except DigestInvalid as exc:
                raise ReferenceInvalid(f"{text[:200]!r}: {exc.message}") from None
        host, slash, path = rest.partition("/")
        if not slash or not ("." in host or ":" in host or host == "localhost"):
            host, path = DOCKER_HUB, rest
        tag = None
        name, colon, maybe_tag = path.rpartition(":")
        if colon and "/" not in maybe_tag:
            path, tag = name, maybe_tag
        validate_host(host)
        if host == DOCKER_HUB and "/" not in path:
            path = f"library/{path}"
        try:
            validate_name(path)
            if tag is not None:
                validate_tag(tag)
        except (NameInvalid, TagInvalid) as exc:
            raise ReferenceInvalid(f"{text[:200]!r}: {exc.message}") from None
        if tag is None and digest is None:
            tag = default_tag
        return cls(host, path, tag, digest)

    @property
    def reference(self) -> str:
        """What to ask the registry for: the digest when there is one, else the tag."""
        if self.digest is not None:
            return str(self.digest)
        return self.tag or DEFAULT_TAG

    @property
    def api_host(self) -> str:
        """The host serving the registry API (Docker Hub's differs from its name)."""
        return DOCKER_HUB_API if self.host == DOCKER_HUB else self.host

    def with_tag(self, tag: str) -> ImageRef:
        return ImageRef(self.host, self.repository, validate_tag(tag), None)

    def with_digest(self, digest: Digest) -> ImageRef:
        return ImageRef(self.host, self.repository, None, digest)

    def __str__(self) -> str:
        text = f"{self.host}/{self.repository}"
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text
