"""The registry store: the blob store plus every repository, the catalog and upkeep."""

from __future__ import annotations

import logging
import time

from mirror.coordination.leases import Coordinator, LocalCoordinator
from mirror.store import links, paths
from mirror.store.blobs import BlobStore
from mirror.store.driver import PathNotFound, StorageDriver, TempFileCleanup
from mirror.store.ingest.remote import Peers
from mirror.store.listings import DirectoryListings, RepositoryIndex, repositories_with
from mirror.store.manifests import ManifestCache
from mirror.store.repository import Repository
from mirror.store.sessions import UPLOAD_LEASE_TTL, UPLOAD_WAIT, UploadSessions
from mirror.store.tracking import ContentTracker

log = logging.getLogger("mirror.store")


class Store:
    """Everything stored on one driver.

    `coordinator` orders the requests of each upload session among everyone serving this
    storage (see `mirror.store.sessions`): the default, a `LocalCoordinator`, is right
    only when this is the one `Store` on the storage; workers and processes sharing it
    need a `FileCoordinator` on a directory they share, replicas on other hosts Redis.
    `peers` (replicas on other hosts, `cluster.advertise`) read the partial blobs of this
    store's downloads, and this store reads theirs (`mirror.store.ingest.remote`).
    `tracker` tells an online garbage collection and eviction what the store uses
    (`mirror.store.tracking`); the default tells nobody.
    """

    def __init__(
        self,
        driver: StorageDriver,
        *,
        delete_enabled: bool = False,
        coordinator: Coordinator | None = None,
        upload_wait: float = UPLOAD_WAIT,
        upload_lease_ttl: float = UPLOAD_LEASE_TTL,
        tracker: ContentTracker | None = None,
        redirect: bool = False,
        spool_directory: str | None = None,
        peers: Peers | None = None,
    ) -> None:
        self.driver = driver
        self.tracker = tracker or ContentTracker()
        self.blobs = BlobStore(
            driver,
            tracker=self.tracker,
            redirect=redirect,
            spool_directory=spool_directory,
            peers=peers,
        )
        self.delete_enabled = delete_enabled
        self._manifest_cache = ManifestCache()
        self._sessions = UploadSessions(
            coordinator or LocalCoordinator(), lease_ttl=upload_lease_ttl, wait=upload_wait
        )
        self.listings = DirectoryListings(driver)
        self.index = RepositoryIndex(driver)

    def repository(self, name: str) -> Repository:
        """A repository by (already validated) name; it exists once something is stored."""
        return Repository(
            name,
            self.blobs,
            manifest_cache=self._manifest_cache,
            sessions=self._sessions,
            delete_enabled=self.delete_enabled,
            listings=self.listings,
            index=self.index,
        )

    async def repositories(self) -> list[str]:
        """Names of every repository holding manifests, sorted (do not modify the list)."""
        return await self.index.names()

    async def purge_uploads(self, older_than: float, *, dry_run: bool = False) -> list[str]:
        """Remove upload sessions started more than `older_than` seconds ago."""
        cutoff = time.time() - older_than
        purged: list[str] = []
        for name in await repositories_with(self.driver, "_uploads"):
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

    async def purge_partials(self, older_than: float) -> int:
        """Remove what writers that died left behind (partial blobs of downloads, half
        written files) untouched for `older_than` seconds; return how many went.

        Drivers that leave nothing behind when their process dies purge nothing.
        """
        purged = self.blobs.purge_spool(older_than)
        if isinstance(self.driver, TempFileCleanup):
            purged += await self.driver.purge_temp_files(older_than)
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
