"""The registry store: the blob store plus every repository, the catalog and upkeep."""

from __future__ import annotations

import logging
import time

from mirror.store import links, paths
from mirror.store.blobs import BlobStore
from mirror.store.driver import PathNotFound, StorageDriver
from mirror.store.manifests import ManifestCache
from mirror.store.repository import Repository
from mirror.store.uploads import HashStates

log = logging.getLogger("mirror.store")


class RegistryStore:
    def __init__(self, driver: StorageDriver, *, delete_enabled: bool = False) -> None:
        self.driver = driver
        self.blobs = BlobStore(driver)
        self.delete_enabled = delete_enabled
        self._manifest_cache = ManifestCache()
        self._hash_states = HashStates()

    def repository(self, name: str) -> Repository:
        """A repository by (already validated) name; it exists once something is stored."""
        return Repository(
            name,
            self.blobs,
            manifest_cache=self._manifest_cache,
            hash_states=self._hash_states,
            delete_enabled=self.delete_enabled,
        )

    async def repositories(self) -> list[str]:
        """Names of every repository holding manifests, sorted."""
        return sorted(await self._repositories_with("_manifests"))

    async def _repositories_with(self, marker: str) -> list[str]:
        """Repository names whose directory has a child named `marker`."""
        found: list[str] = []
        pending = [(paths.REPOSITORIES, "")]
        while pending:
            path, prefix = pending.pop()
            try:
                children = await self.driver.list(path)
            except PathNotFound:
                continue
            if prefix and marker in children:
                found.append(prefix)
            for child in children:
                if not child.startswith("_"):
                    pending.append((f"{path}/{child}", f"{prefix}/{child}" if prefix else child))
        return found

    async def purge_uploads(self, older_than: float, *, dry_run: bool = False) -> list[str]:
        """Remove upload sessions started more than `older_than` seconds ago."""
        cutoff = time.time() - older_than
        purged: list[str] = []
        for name in await self._repositories_with("_uploads"):
            try:
                ids = await self.driver.list(paths.uploads_dir(name))
            except PathNotFound:
                continue
            for upload_id in ids:
                started = await self._started_at(name, upload_id)
                if started is not None and started >= cutoff:
                    continue
                purged.append(f"{name}/{upload_id}")
                if not dry_run:
                    await links.remove(self.driver, paths.upload_dir(name, upload_id))
        if purged:
            log.info("purged %d upload sessions%s", len(purged), " (dry run)" if dry_run else "")
        return purged

    async def _started_at(self, name: str, upload_id: str) -> float | None:
        try:
            raw = await self.driver.get_content(paths.upload_started(name, upload_id))
            return float(raw.decode())
        except (PathNotFound, ValueError):
            try:
                return (await self.driver.stat(paths.upload_dir(name, upload_id))).mtime
            except PathNotFound:
                return None
