"""What sync records in the metadata store.

- ``sync:tag:<local name>:<tag>`` -> ``{"digest": ..., "synced": epoch}``: the tag is kept
  by sync (eviction refreshes it instead of evicting it, and keeps what it reaches: the
  manifest, the index children of the synced platforms, their blobs). Each pass renews
  the mark with a ttl of several intervals, so a tag the configuration no longer selects
  loses its mark by itself.
- ``sync:next:<target key>`` -> epoch: when the target is due again (shared by every
  replica, so they keep one schedule).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from mirror.coordination.metadata import MetadataStore
from mirror.digests import Digest
from mirror.errors import DigestInvalid

log = logging.getLogger("mirror.sync")

TAG_PREFIX = "sync:tag:"
NEXT_PREFIX = "sync:next:"


@dataclass(frozen=True, slots=True)
class SyncedTag:
    repository: str  # the local (stored) name
    tag: str
    digest: Digest
    synced: float


def tag_key(repository: str, tag: str) -> str:
    return f"{TAG_PREFIX}{repository}:{tag}"


class SyncMarks:
    def __init__(self, metadata: MetadataStore) -> None:
        self.metadata = metadata

    async def mark(
        self, repository: str, tag: str, digest: Digest, when: float, ttl: float
    ) -> None:
        doc = json.dumps({"digest": str(digest), "synced": when}).encode()
        await self.metadata.set(tag_key(repository, tag), doc, ttl)

    async def get(self, repository: str, tag: str) -> SyncedTag | None:
        """The mark of a tag, None when it is not synced (or the mark is unreadable)."""
        raw = await self.metadata.get(tag_key(repository, tag))
        return None if raw is None else _parse(tag_key(repository, tag), raw)

    async def synced(self) -> AsyncIterator[SyncedTag]:
        """Every synced tag (the metadata store's scan: a tag may come twice)."""
        async for key, raw in self.metadata.scan(TAG_PREFIX):
            found = _parse(key, raw)
            if found is not None:
                yield found

    async def next_run(self, target: str) -> float | None:
        raw = await self.metadata.get(f"{NEXT_PREFIX}{target}")
        try:
            return float(raw.decode()) if raw is not None else None
        except (ValueError, UnicodeDecodeError):
            return None

    async def schedule(self, target: str, when: float, ttl: float) -> None:
        await self.metadata.set(f"{NEXT_PREFIX}{target}", repr(when).encode(), ttl)


def _parse(key: str, raw: bytes) -> SyncedTag | None:
    name, _, tag = key.removeprefix(TAG_PREFIX).rpartition(":")
    try:
        doc = json.loads(raw)
        return SyncedTag(name, tag, Digest.parse(doc["digest"]), float(doc["synced"]))
    except (ValueError, KeyError, TypeError, DigestInvalid):
        log.warning("unreadable sync mark %s", key[:300])
        return None
