"""What a stored manifest references, read as leniently as possible.

The collector must never delete what any manifest in the store might need, including
manifests `mirror` would refuse today (Docker schema 1 from old registry:2 stores,
OCI artifact manifests of the withdrawn 1.1 draft, unknown media types). So instead of
the strict `Manifest.parse`, this takes every digest found where any of those formats
puts one: `config`, `layers[]`, `blobs[]`, `fsLayers[].blobSum` (blobs), `manifests[]`
(children) and `subject`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mirror.lifecycle.digestset import key_of_text


class UnreadableManifest(ValueError):
    """The bytes are not a JSON object, so nothing can be said about what they reference."""


@dataclass(frozen=True, slots=True)
class References:
    """Compact keys (see `digestset`) of what one manifest references."""

    blobs: tuple[bytes, ...] = ()
    children: tuple[bytes, ...] = ()
    subject: bytes | None = None

    @property
    def all(self) -> tuple[bytes, ...]:
        head = (self.subject,) if self.subject is not None else ()
        return self.blobs + self.children + head


def _key(value: Any) -> bytes | None:
    return key_of_text(value) if isinstance(value, str) else None


def _descriptor_keys(items: Any, field: str = "digest") -> list[bytes]:
    if not isinstance(items, list):
        return []
    found = []
    for item in items:
        if isinstance(item, dict) and (key := _key(item.get(field))) is not None:
            found.append(key)
    return found


def references_of(raw: bytes) -> References:
    """The references of manifest bytes; raise UnreadableManifest when not a JSON object."""
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise UnreadableManifest("not valid JSON") from None
    if not isinstance(doc, dict):
        raise UnreadableManifest("not a JSON object")
    blobs: list[bytes] = []
    config = doc.get("config")
    if isinstance(config, dict) and (key := _key(config.get("digest"))) is not None:
        blobs.append(key)
    blobs += _descriptor_keys(doc.get("layers"))
    blobs += _descriptor_keys(doc.get("blobs"))
    blobs += _descriptor_keys(doc.get("fsLayers"), "blobSum")
    subject = doc.get("subject")
    return References(
        blobs=tuple(dict.fromkeys(blobs)),
        children=tuple(dict.fromkeys(_descriptor_keys(doc.get("manifests")))),
        subject=_key(subject.get("digest")) if isinstance(subject, dict) else None,
    )
