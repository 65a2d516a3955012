"""Cached listings, so that tag lists and the catalog cost the same at 10,000 entries as
at 100.

`DirectoryListings`: sorted names of a directory, reused while the directory's mtime is
unchanged. A listing is only kept when that mtime is at least `RACY` seconds old: a
change in the same clock tick as the listing would otherwise go unseen (the trick git
uses for its index). Writers in this process also invalidate explicitly.

`RepositoryIndex`: the sorted names of all repositories (the catalog). Built by one walk,
then kept: every process that creates a repository adds it here and writes a fresh
random token to a version file in the store; a reader that finds another token than the
one it built with walks again. So several processes sharing a store stay consistent.
"""

from __future__ import annotations

import bisect
import secrets
import time
from collections import OrderedDict

from mirror.store import paths
from mirror.store.driver import PathNotFound, StorageDriver

RACY = 1.0
LISTINGS_LIMIT = 1024
CATALOG_VERSION = f"{paths.ROOT}/_mirror/catalog.version"


class DirectoryListings:
    def __init__(self, driver: StorageDriver, limit: int = LISTINGS_LIMIT) -> None:
        self._driver = driver
        self._limit = limit
        self._cache: OrderedDict[str, tuple[float, list[str]]] = OrderedDict()

    async def names(self, path: str) -> list[str]:
        """Sorted child names of `path` (do not modify the list); raise PathNotFound."""
        mtime = (await self._driver.stat(path)).mtime
        hit = self._cache.get(path)
        if hit is not None and hit[0] == mtime:
            self._cache.move_to_end(path)
            return hit[1]
        names = sorted(await self._driver.list(path))
        if time.time() - mtime >= RACY:
            self._cache[path] = (mtime, names)
            if len(self._cache) > self._limit:
                self._cache.popitem(last=False)
        return names

    def invalidate(self, path: str) -> None:
        self._cache.pop(path, None)


class RepositoryIndex:
    def __init__(self, driver: StorageDriver) -> None:
        self._driver = driver
        self._names: list[str] | None = None
        self._version: bytes | None = None

    async def names(self) -> list[str]:
        """Every repository holding manifests, sorted (do not modify the list)."""
        version = await self._read_version()
        if self._names is None or version != self._version:
            self._names = await self._walk()
            self._version = version
        return self._names

    async def created(self, name: str) -> None:
        """Record a repository that just got its first manifest."""
        token = secrets.token_hex(16).encode()
        await self._driver.put_content(CATALOG_VERSION, token)
        if self._names is not None:
            position = bisect.bisect_left(self._names, name)
            if position == len(self._names) or self._names[position] != name:
                self._names.insert(position, name)
            self._version = token

    async def _read_version(self) -> bytes:
        try:
            return await self._driver.get_content(CATALOG_VERSION)
        except PathNotFound:
            return b""

    async def _walk(self) -> list[str]:
        return sorted(await repositories_with(self._driver, "_manifests"))


async def repositories_with(driver: StorageDriver, marker: str) -> list[str]:
    """Repository names whose directory has a child named `marker` (a tree walk)."""
    found: list[str] = []
    pending = [(paths.REPOSITORIES, "")]
    while pending:
        path, prefix = pending.pop()
        try:
            children = await driver.list(path)
        except PathNotFound:
            continue
        if prefix and marker in children:
            found.append(prefix)
        for child in children:
            if not child.startswith("_"):
                pending.append((f"{path}/{child}", f"{prefix}/{child}" if prefix else child))
    return found
