"""Where a download in progress can be read, told to the other processes of the store.

The process that holds a blob's lease publishes the locator of its partial blob and the
blob's size under ``fill:<digest>`` in the shared metadata store; its followers read it
to stream the partial (`BlobStore.open_partial`). The holder withdraws it when its
download ends, before it releases the lease, so an announcement still there once the
lease is free was left by a holder that died.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from mirror.coordination.metadata import MetadataStore
from mirror.digests import Digest


@dataclass(frozen=True, slots=True)
class Announcement:
    locator: str
    size: int


class Announcements:
    """Announcements in `metadata`, kept for `ttl` seconds at most (a holder that dies
    cannot withdraw its own)."""

    def __init__(self, metadata: MetadataStore, ttl: float) -> None:
        self._metadata = metadata
        self._ttl = ttl

    @staticmethod
    def key(digest: Digest) -> str:
        """The metadata key, which is also the name of the blob's lease."""
        return f"fill:{digest}"

    async def get(self, digest: Digest) -> Announcement | None:
        """The announcement for `digest`, if there is one that can be read."""
        raw = await self._metadata.get(self.key(digest))
        if raw is None:
            return None
        try:
            info = json.loads(raw)
            return Announcement(str(info["path"]), int(info["size"]))
        except (ValueError, KeyError, TypeError):
            return None

    async def publish(self, digest: Digest, announcement: Announcement) -> None:
        # "path": the key of the versions that announced driver paths, which is what the
        # file system's locators still are; so old and new processes follow each other.
        raw = json.dumps({"path": announcement.locator, "size": announcement.size})
        await self._metadata.set(self.key(digest), raw.encode(), ttl=self._ttl)

    async def withdraw(self, digest: Digest) -> None:
        await self._metadata.delete(self.key(digest))
