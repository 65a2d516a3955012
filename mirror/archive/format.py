"""The archive's format: an OCI image layout in a tar, plus one file of ours.

Members, in this order:

- `oci-layout`: `{"imageLayoutVersion": "1.0.0"}`.
- `index.json`: an OCI image index with one entry per exported tag and one per exported
  manifest that no exported tag reaches (pulled by digest, referrers). Annotations:
  - a tag: `org.opencontainers.image.ref.name` is `<repository>:<tag>` with the
    repository as stored (`docker.io/library/alpine:3.19`); split at the last `:`
    (repository names have none). `io.containerd.image.name` repeats it, so that
    `ctr image import` names the image the same way.
  - an untagged manifest: `io.mirror-registry.repository` is `<repository>`.
  - either, when the repository is a cache of an upstream: `io.mirror-registry.origin`
    is that upstream's prefix (the first component of its repository names); import
    makes the content cached content of that upstream (blob origin markers) and its
    tags fresh. Without it the content is local.
- `mirror-archive.json`: `{"mirrorArchive": 1, "blobs": [digest, ...]}`, every blob
  (manifests included) the index reaches, whether or not this archive carries it. An
  archive made `--since` an earlier one carries only the blobs the earlier one's list
  lacks; after importing the chain, the store holds every blob of the newest list.
- `blobs/<algorithm>/<hex>`: the content, each blob once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mirror.digests import Digest
from mirror.errors import DigestInvalid, ManifestInvalid, NameInvalid, TagInvalid
from mirror.types import OCI_INDEX, Descriptor, validate_name, validate_tag

LAYOUT = "oci-layout"
INDEX = "index.json"
LIST = "mirror-archive.json"
LAYOUT_CONTENT = json.dumps({"imageLayoutVersion": "1.0.0"}).encode()
FORMAT_VERSION = 1

REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"
REPOSITORY = "io.mirror-registry.repository"
ORIGIN = "io.mirror-registry.origin"

# The archive's own JSON files are read whole: bounded (about 70 bytes per blob).
MAX_INDEX_SIZE = 256 * 1024 * 1024


class ArchiveInvalid(Exception):
    """The archive is not one this version can load (or is damaged); the message says
    what and where, in one line."""


def blob_member(digest: Digest) -> str:
    return f"blobs/{digest.algorithm}/{digest.hex}"


def member_digest(name: str) -> Digest | None:
    """The digest a member name `blobs/<alg>/<hex>` stands for; None for other names.

    Raises ArchiveInvalid for a name under `blobs/` that is no valid digest.
    """
    name = name.removeprefix("./")
    parts = name.split("/")
    if len(parts) != 3 or parts[0] != "blobs":
        return None
    try:
        return Digest.parse(f"{parts[1]}:{parts[2]}")
    except DigestInvalid as exc:
        raise ArchiveInvalid(f"member {name[:200]!r} is not a blob: {exc.message}") from None


@dataclass(frozen=True, slots=True)
class Entry:
    """One `index.json` entry: a tag (or an untagged manifest) of a repository."""

    repository: str
    tag: str | None
    descriptor: Descriptor
    origin: str | None = None

    @property
    def ref_name(self) -> str:
        return f"{self.repository}:{self.tag}"

    def to_json(self) -> dict[str, Any]:
        annotations: dict[str, str] = {}
        if self.tag is not None:
            annotations[REF_NAME] = annotations[CONTAINERD_NAME] = self.ref_name
        else:
            annotations[REPOSITORY] = self.repository
        if self.origin is not None:
            annotations[ORIGIN] = self.origin
        plain = Descriptor(self.descriptor.media_type, self.descriptor.digest, self.descriptor.size)
        return {**plain.to_json(), "annotations": annotations}

    @classmethod
    def from_json(cls, value: object, where: str) -> Entry:
        try:
            descriptor = Descriptor.from_json(value, where)
        except ManifestInvalid as exc:
            raise ArchiveInvalid(f"index.json: {exc.message}") from None
        annotations = descriptor.annotations or {}
        ref = annotations.get(REF_NAME)
        origin = annotations.get(ORIGIN)
        try:
            if isinstance(ref, str):
                repository, sep, tag = ref.rpartition(":")
                if not sep or "/" in tag:
                    raise ArchiveInvalid(
                        f"index.json: {where}: {REF_NAME} {ref[:200]!r} is not <repository>:<tag>"
                    )
                entry = cls(validate_name(repository), validate_tag(tag), descriptor)
            else:
                named = annotations.get(REPOSITORY)
                if not isinstance(named, str):
                    raise ArchiveInvalid(
                        f"index.json: {where} names no repository ({REF_NAME} or {REPOSITORY})"
                    )
                entry = cls(validate_name(named), None, descriptor)
            if origin is not None:
                validate_name(origin)
                if "/" in origin:
                    raise NameInvalid(f"origin {origin[:100]!r} is not one name component")
        except (NameInvalid, TagInvalid) as exc:
            raise ArchiveInvalid(f"index.json: {where}: {exc.message}") from None
        if origin is not None and entry.repository.split("/", 1)[0] != origin:
            raise ArchiveInvalid(
                f"index.json: {where}: origin {origin!r} is not the first component of "
                f"{entry.repository!r}"
            )
        return cls(entry.repository, entry.tag, descriptor, origin)


def index_json(entries: list[Entry]) -> bytes:
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [entry.to_json() for entry in entries],
    }
    return json.dumps(doc, indent=1).encode()


def parse_index(raw: bytes) -> list[Entry]:
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ArchiveInvalid("index.json is not JSON") from None
    manifests = doc.get("manifests") if isinstance(doc, dict) else None
    if not isinstance(manifests, list):
        raise ArchiveInvalid("index.json has no manifests list")
    return [Entry.from_json(item, f"manifests[{i}]") for i, item in enumerate(manifests)]


def list_json(blobs: list[Digest]) -> bytes:
    return json.dumps({"mirrorArchive": FORMAT_VERSION, "blobs": [str(d) for d in blobs]}).encode()


def parse_list(raw: bytes) -> list[Digest]:
    try:
        doc = json.loads(raw)
        version = doc["mirrorArchive"]
        blobs = doc["blobs"]
    except (ValueError, UnicodeDecodeError, KeyError, TypeError):
        raise ArchiveInvalid(f"{LIST} is not a mirror archive list") from None
    if version != FORMAT_VERSION:
        raise ArchiveInvalid(f"{LIST}: format {version!r} is not {FORMAT_VERSION}")
    if not isinstance(blobs, list) or not all(isinstance(b, str) for b in blobs):
        raise ArchiveInvalid(f"{LIST}: blobs is not a list of digests")
    try:
        return [Digest.parse(b) for b in blobs]
    except DigestInvalid as exc:
        raise ArchiveInvalid(f"{LIST}: {exc.message}") from None
