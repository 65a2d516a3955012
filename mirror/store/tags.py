"""Tags of one repository: mutable names pointing at manifest digests."""

from __future__ import annotations

from mirror.digests import Digest
from mirror.errors import ManifestUnknown, NameUnknown
from mirror.store import links, paths
from mirror.store.driver import PathNotFound, StorageDriver
from mirror.store.faults import storage_faults
from mirror.store.listings import DirectoryListings


class TagStore:
    def __init__(self, name: str, driver: StorageDriver, listings: DirectoryListings) -> None:
        self.name = name
        self._driver = driver
        self._listings = listings

    async def resolve(self, tag: str) -> Digest:
        """The digest `tag` points at; raise ManifestUnknown."""
        digest = await links.read_link(self._driver, paths.tag_current(self.name, tag))
        if digest is None:
            raise ManifestUnknown(f"tag {tag!r} unknown in repository {self.name}")
        return digest

    async def get(self, tag: str) -> Digest | None:
        return await links.read_link(self._driver, paths.tag_current(self.name, tag))

    async def tag(self, tag: str, digest: Digest, *, history: bool = True) -> None:
        """Point `tag` at `digest`.

        With `history`, also the index link that keeps the reference layout's tag history
        (nothing here reads it; cached tags of an upstream skip it and its fsync).
        """
        # `current` first: a crash in between must not leave a listed tag that is not there.
        try:
            with storage_faults():
                await links.write_link(self._driver, paths.tag_current(self.name, tag), digest)
                if history:
                    index = paths.tag_index_link(self.name, tag, digest)
                    await links.write_link(self._driver, index, digest)
        finally:
            self._listings.invalidate(paths.tags_dir(self.name))

    async def untag(self, tag: str) -> None:
        """Remove a tag; raise ManifestUnknown when it does not exist."""
        removed = await links.remove(self._driver, paths.tag_dir(self.name, tag))
        self._listings.invalidate(paths.tags_dir(self.name))
        if not removed:
            raise ManifestUnknown(f"tag {tag!r} unknown in repository {self.name}")

    async def all(self) -> list[str]:
        """Every tag, sorted (do not modify the list); NameUnknown when there never was one."""
        try:
            return await self._listings.names(paths.tags_dir(self.name))
        except PathNotFound:
            raise NameUnknown(f"repository {self.name} unknown") from None

    async def pointing_at(self, digest: Digest) -> list[str]:
        """Tags whose current target is `digest`."""
        try:
            tags = await self.all()
        except NameUnknown:
            return []
        return [tag for tag in tags if await self.get(tag) == digest]
