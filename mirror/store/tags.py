"""Tags of one repository: mutable names pointing at manifest digests.

Each change of a tag (pointing it, removing it) runs holding the tag's lease from the
store's coordinator, so that removing a tag *because it points at a deleted manifest*
(`untag_if`) cannot remove it after another request re-pointed it, nor race that
request's writes into the tag's directory (which answered 500: "Directory not empty").
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Final

from mirror.coordination.leases import Coordinator, Lease
from mirror.digests import Digest
from mirror.errors import ManifestUnknown, NameUnknown, Unavailable
from mirror.store import links, paths
from mirror.store.driver import PathNotFound, StorageDriver
from mirror.store.exclusive import exclusive
from mirror.store.faults import storage_faults
from mirror.store.listings import DirectoryListings

TAG_LEASE_TTL: Final = 10.0
TAG_WAIT: Final = 15.0


class TagStore:
    def __init__(
        self,
        name: str,
        driver: StorageDriver,
        listings: DirectoryListings,
        coordinator: Coordinator,
    ) -> None:
        self.name = name
        self._driver = driver
        self._listings = listings
        self._coordinator = coordinator

    def _exclusive(self, tag: str) -> AbstractAsyncContextManager[Lease]:
        def busy() -> Unavailable:
            return Unavailable(f"tag {tag!r} is being changed by another request; retry")

        return exclusive(
            self._coordinator,
            f"tag:{self.name}/{tag}",
            ttl=TAG_LEASE_TTL,
            wait=TAG_WAIT,
            busy=busy,
            what=f"tag {tag!r}",
        )

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
            async with self._exclusive(tag):
                with storage_faults():
                    current = paths.tag_current(self.name, tag)
                    await links.write_link(self._driver, current, digest)
                    if history:
                        index = paths.tag_index_link(self.name, tag, digest)
                        await links.write_link(self._driver, index, digest)
        finally:
            self._listings.invalidate(paths.tags_dir(self.name))

    async def untag(self, tag: str) -> None:
        """Remove a tag; raise ManifestUnknown when it does not exist."""
        async with self._exclusive(tag):
            removed = await self._remove(tag)
        if not removed:
            raise ManifestUnknown(f"tag {tag!r} unknown in repository {self.name}")

    async def untag_if(self, tag: str, digest: Digest) -> bool:
        """Remove `tag` if it still points at `digest`; return whether it did."""
        async with self._exclusive(tag):
            return await self.get(tag) == digest and await self._remove(tag)

    async def _remove(self, tag: str) -> bool:
        try:
            return await links.remove(self._driver, paths.tag_dir(self.name, tag))
        finally:
            self._listings.invalidate(paths.tags_dir(self.name))

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
