"""The usage report (`mirror du`, and the data a dashboard asks for): bytes per
repository, unique and shared, local against cached per upstream, and the last use.

A repository's bytes are those of every blob it references or links (its manifests'
own bytes included), each counted once. Unique bytes are blobs no other repository
has; the rest are shared. Totals count each blob once: `local` what local
repositories use, `cached[<upstream prefix>]` what that upstream's cache repositories
use and no local one does (as eviction counts it), `total` every referenced blob.
Last use is the newest access-log time of a repository's manifests and blobs, else
when its newest manifest was stored.
"""

from __future__ import annotations

import datetime
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from mirror.coordination.accesslog import AccessLog
from mirror.digests import Digest
from mirror.lifecycle.inventory import Inventory, images, referenced, scan
from mirror.lifecycle.layout import Layout
from mirror.lifecycle.report import human_bytes
from mirror.store.driver import StorageDriver

CONCURRENCY = 16


@dataclass(frozen=True, slots=True)
class RepositoryUsage:
    name: str
    origin: str | None  # the upstream prefix of a cache repository; None: local
    tags: int
    images: int
    bytes: int
    unique_bytes: int
    shared_bytes: int
    last_used: float | None  # epoch seconds


@dataclass(slots=True)
class UsageReport:
    repositories: list[RepositoryUsage] = field(default_factory=list)
    local: int = 0
    cached: dict[str, int] = field(default_factory=dict)
    total: int = 0
    blobs: int = 0

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        """The table `mirror du` prints."""
        rows = [("REPOSITORY", "KIND", "IMAGES", "SIZE", "UNIQUE", "SHARED", "LAST USED")]
        for repo in self.repositories:
            rows.append(
                (
                    repo.name,
                    f"cache:{repo.origin}" if repo.origin else "local",
                    str(repo.images),
                    human_bytes(repo.bytes),
                    human_bytes(repo.unique_bytes),
                    human_bytes(repo.shared_bytes),
                    _when(repo.last_used),
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        out = [
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
            for row in rows
        ]
        out.append("")
        out.append(f"local: {human_bytes(self.local)}")
        for origin, size in sorted(self.cached.items()):
            out.append(f"cached from {origin}: {human_bytes(size)}")
        out.append(f"total: {human_bytes(self.total)} in {self.blobs} blobs")
        return out


def _when(moment: float | None) -> str:
    if moment is None:
        return "-"
    return datetime.datetime.fromtimestamp(moment, datetime.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


async def usage_of(inventory: Inventory, access_log: AccessLog | None = None) -> UsageReport:
    """The report for an inventory already taken (see `inventory.scan`)."""
    stats = inventory.stats
    per_repository = [(r, referenced(r) & stats.keys()) for r in inventory.repositories]
    holders: Counter[Digest] = Counter()
    for _, digests in per_repository:
        holders.update(digests)
    report = UsageReport()
    local: set[Digest] = set()
    cached: dict[str, set[Digest]] = {}
    for repository, digests in per_repository:
        if repository.origin is None:
            local |= digests
        else:
            cached.setdefault(repository.origin, set()).update(digests)
    for repository, digests in per_repository:
        size = inventory.size_of(digests)
        unique = inventory.size_of(d for d in digests if holders[d] == 1)
        last: float | None = max((r.mtime for r in repository.revisions.values()), default=None)
        if access_log is not None and digests:
            used = [m for m in await access_log.last_used(list(digests)) if m is not None]
            if used:
                last = max(used)
        report.repositories.append(
            RepositoryUsage(
                repository.name,
                repository.origin,
                len(repository.tags),
                len(images(repository, stats)),
                size,
                unique,
                size - unique,
                last,
            )
        )
    report.repositories.sort(key=lambda r: r.name)
    report.local = inventory.size_of(local)
    report.cached = {o: inventory.size_of(ds - local) for o, ds in sorted(cached.items())}
    everything = set(holders)
    report.total = inventory.size_of(everything)
    report.blobs = len(everything)
    return report


async def usage(
    driver: StorageDriver,
    origin_of: Callable[[str], str | None],
    access_log: AccessLog | None = None,
) -> UsageReport:
    """Walk the store on `driver` and report (the dashboard's call)."""
    inventory = await scan(Layout(driver, CONCURRENCY), origin_of)
    return await usage_of(inventory, access_log)
