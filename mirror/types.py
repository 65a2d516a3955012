"""Value types of the registry: names, references, media types, descriptors, manifests."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from mirror.digests import Digest
from mirror.errors import DigestInvalid, ManifestInvalid, NameInvalid, TagInvalid

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST_V1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_MANIFEST_V1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"

INDEX_TYPES = frozenset({DOCKER_MANIFEST_LIST, OCI_INDEX})
IMAGE_TYPES = frozenset({DOCKER_MANIFEST, OCI_MANIFEST})
MANIFEST_TYPES = INDEX_TYPES | IMAGE_TYPES
SCHEMA1_TYPES = frozenset({DOCKER_MANIFEST_V1, DOCKER_MANIFEST_V1_SIGNED})

MAX_NAME_LENGTH = 255
MAX_MANIFEST_SIZE = 4 * 1024 * 1024
MAX_SIZE = 2**63 - 1  # sizes are int64 on the wire (the reference's Go types)

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_NAME = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")


def validate_name(name: str) -> str:
    """Return `name` if it is a valid repository name, else raise NameInvalid."""
    if len(name) > MAX_NAME_LENGTH:
        raise NameInvalid(f"repository name longer than {MAX_NAME_LENGTH} characters")
    if not _NAME.fullmatch(name):
        raise NameInvalid(f"invalid repository name {name[:100]!r}")
    return name


def validate_tag(tag: str) -> str:
    """Return `tag` if valid, else raise TagInvalid."""
    if not _TAG.fullmatch(tag):
        raise TagInvalid(f"invalid tag {tag[:150]!r}")
    return tag


@dataclass(frozen=True, slots=True)
class Reference:
    """A manifest reference: exactly one of `tag` or `digest`."""

    tag: str | None = None
    digest: Digest | None = None

    @classmethod
    def parse(cls, value: str) -> Reference:
        if ":" in value:
            return cls(digest=Digest.parse(value))
        return cls(tag=validate_tag(value))

    def __str__(self) -> str:
        return self.tag if self.tag is not None else str(self.digest)


@dataclass(frozen=True, slots=True)
class Descriptor:
    """An OCI content descriptor."""

    media_type: str
    digest: Digest
    size: int
    artifact_type: str | None = None
    annotations: dict[str, str] | None = None
    platform: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": str(self.digest),
            "size": self.size,
        }
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        if self.annotations:
            out["annotations"] = self.annotations
        if self.platform:
            out["platform"] = self.platform
        return out

    @classmethod
    def from_json(cls, value: object, where: str) -> Descriptor:
        if not isinstance(value, dict):
            raise ManifestInvalid(f"{where}: descriptor is not an object")
        media_type = value.get("mediaType")
        digest = value.get("digest")
        size = value.get("size")
        if not isinstance(media_type, str) or not media_type:
            raise ManifestInvalid(f"{where}: mediaType missing")
        if not isinstance(digest, str):
            raise ManifestInvalid(f"{where}: digest missing")
        if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_SIZE:
            raise ManifestInvalid(f"{where}: size missing or invalid")
        try:
            parsed = Digest.parse(digest)
        except DigestInvalid as exc:
            raise ManifestInvalid(f"{where}: {exc.message}") from None
        artifact_type = value.get("artifactType")
        annotations = value.get("annotations")
        platform = value.get("platform")
        return cls(
            media_type=media_type,
            digest=parsed,
            size=size,
            artifact_type=artifact_type if isinstance(artifact_type, str) else None,
            annotations=annotations if isinstance(annotations, dict) else None,
            platform=platform if isinstance(platform, dict) else None,
        )


@dataclass(frozen=True, slots=True)
class Manifest:
    """A manifest as stored: the exact bytes, their digest, and what they reference."""

    raw: bytes
    digest: Digest
    media_type: str
    config: Descriptor | None = None
    layers: tuple[Descriptor, ...] = ()
    manifests: tuple[Descriptor, ...] = ()
    subject: Descriptor | None = None
    artifact_type: str | None = None
    annotations: dict[str, str] | None = field(default=None)

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    @property
    def blobs(self) -> tuple[Descriptor, ...]:
        """Blobs this manifest needs in its repository (config and layers)."""
        head = (self.config,) if self.config is not None else ()
        return head + self.layers

    def descriptor(self) -> Descriptor:
        return Descriptor(self.media_type, self.digest, len(self.raw))

    def referrer_descriptor(self) -> Descriptor:
        """This manifest's entry in a referrers list (the referrers API's answer, the
        fallback tag's index): artifactType falls back to the config's media type."""
        artifact_type = self.artifact_type
        if artifact_type is None and self.media_type in IMAGE_TYPES and self.config:
            artifact_type = self.config.media_type
        return Descriptor(
            media_type=self.media_type,
            digest=self.digest,
            size=len(self.raw),
            artifact_type=artifact_type,
            annotations=self.annotations,
        )

    @classmethod
    def parse(
        cls, raw: bytes, content_type: str | None = None, digest: Digest | None = None
    ) -> Manifest:
        """Parse and validate manifest bytes; raise ManifestInvalid or Unsupported.

        The media type comes from the payload's `mediaType`; when the payload has none, from
        `content_type`, then from its shape. A declared `content_type` that contradicts the
        payload is invalid.
        """
        if len(raw) > MAX_MANIFEST_SIZE:
            raise ManifestInvalid(f"manifest larger than {MAX_MANIFEST_SIZE} bytes")
        doc = _json_object(raw)
        declared = _strip_params(content_type)
        media_type = doc.get("mediaType")
        if media_type is not None and not isinstance(media_type, str):
            raise ManifestInvalid("mediaType is not a string")
        version = doc.get("schemaVersion")
        # Not bool (True == 1) nor float (2.0 == 2): the reference reads an int.
        integer = isinstance(version, int) and not isinstance(version, bool)
        if (integer and version == 1) or media_type in SCHEMA1_TYPES or declared in SCHEMA1_TYPES:
            raise ManifestInvalid(
                "Docker image manifest schema 1 is not supported; use schema 2 or OCI"
            )
        if not integer or version != 2:
            raise ManifestInvalid("schemaVersion must be the integer 2")
        if media_type is None:
            if declared in MANIFEST_TYPES:
                media_type = declared
            elif "manifests" in doc:
                media_type = OCI_INDEX
            else:
                media_type = OCI_MANIFEST
        elif declared and declared in MANIFEST_TYPES and declared != media_type:
            raise ManifestInvalid(
                f"Content-Type {declared} does not match the manifest's mediaType {media_type}"
            )
        if media_type not in MANIFEST_TYPES:
            raise ManifestInvalid(f"unknown manifest media type {media_type[:100]!r}")
        digest = digest or Digest.of(raw)
        subject = (
            Descriptor.from_json(doc["subject"], "subject")
            if doc.get("subject") is not None
            else None
        )
        artifact_type = doc.get("artifactType")
        if artifact_type is not None and not isinstance(artifact_type, str):
            raise ManifestInvalid("artifactType is not a string")
        annotations = doc.get("annotations")
        if annotations is not None and not isinstance(annotations, dict):
            raise ManifestInvalid("annotations is not an object")
        if media_type in INDEX_TYPES:
            children = doc.get("manifests")
            if not isinstance(children, list):
                raise ManifestInvalid("index has no manifests list")
            return cls(
                raw=raw,
                digest=digest,
                media_type=media_type,
                manifests=tuple(
                    Descriptor.from_json(d, f"manifests[{i}]") for i, d in enumerate(children)
                ),
                subject=subject,
                artifact_type=artifact_type,
                annotations=annotations,
            )
        layers = doc.get("layers")
        if not isinstance(layers, list):
            raise ManifestInvalid("manifest has no layers list")
        return cls(
            raw=raw,
            digest=digest,
            media_type=media_type,
            config=Descriptor.from_json(doc.get("config"), "config"),
            layers=tuple(Descriptor.from_json(d, f"layers[{i}]") for i, d in enumerate(layers)),
            subject=subject,
            artifact_type=artifact_type,
            annotations=annotations,
        )


def _no_constant(name: str) -> object:
    raise ManifestInvalid(f"manifest JSON has {name}, which JSON does not allow")


def _json_object(raw: bytes) -> dict[str, Any]:
    """The JSON object in `raw`, read as the reference reads it: UTF-8 only (no byte
    order mark, no UTF-16 or UTF-32, which Python's json would detect and accept), no
    NaN or Infinity; invalid UTF-8 inside a string becomes U+FFFD, as in Go."""
    # A BOM decodes to U+FEFF, which json.loads refuses; other encodings bring NULs.
    text = raw.decode("utf-8", "replace")
    try:
        doc = json.loads(text, parse_constant=_no_constant)
    except ValueError:
        raise ManifestInvalid("manifest is not valid UTF-8 JSON") from None
    except RecursionError:  # nesting deeper than the parser's stack
        raise ManifestInvalid("manifest JSON is nested too deeply") from None
    if not isinstance(doc, dict):
        raise ManifestInvalid("manifest is not a JSON object")
    return doc


def _strip_params(content_type: str | None) -> str | None:
    if not content_type:
        return None
    return content_type.split(";", 1)[0].strip().lower() or None
