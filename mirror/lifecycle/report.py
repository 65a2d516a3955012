"""What a collection did: the running lines in registry:2's wording, and the totals.

Lines go to an `emit` callback as they happen (the CLI prints them; `--quiet` drops
them), so a collection of any size holds no list of what it removed. Warnings (a
manifest whose content is missing, a name that is not a digest) go to `warn`; they do
not stop the collection. Errors (a driver failure) are counted: one during the mark
phase stops the collection before anything is deleted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mirror.digests import Digest

Emit = Callable[[str], None]


def _ignore(_line: str) -> None:
    return None


def human_bytes(size: int) -> str:
    """`1536` -> `1.5 KiB`; exact bytes below 1 KiB."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


@dataclass
class GCReport:
    """Totals of one collection. In a dry run, "removed" means "would be removed"."""

    dry_run: bool = False
    repositories: int = 0
    manifests_marked: int = 0
    blobs_marked: int = 0
    manifests_removed: int = 0
    blobs_removed: int = 0
    bytes_freed: int = 0
    layer_links_removed: int = 0
    kept_recent: int = 0  # unmarked, but modified or used within the grace delay
    warnings: int = 0
    errors: int = 0

    def eligibility_line(self) -> str:
        """registry:2's line: how much was marked and how much is eligible for deletion."""
        return (
            f"{self.blobs_marked} blobs marked, {self.blobs_removed} blobs and "
            f"{self.manifests_removed} manifests eligible for deletion"
        )

    def summary(self) -> str:
        verb = "would remove" if self.dry_run else "removed"
        parts = [
            f"{verb} {self.blobs_removed} blobs ({human_bytes(self.bytes_freed)}),"
            f" {self.manifests_removed} manifests and {self.layer_links_removed} layer links",
            f"kept {self.blobs_marked} marked blobs of {self.manifests_marked} manifests"
            f" in {self.repositories} repositories",
        ]
        if self.kept_recent:
            parts.append(f"{self.kept_recent} unreferenced but recent")
        if self.warnings:
            parts.append(f"{self.warnings} warnings")
        if self.errors:
            parts.append(f"{self.errors} errors")
        return "garbage-collect: " + "; ".join(parts)


class Events:
    """The running output of one collection, and its report."""

    def __init__(self, report: GCReport, emit: Emit | None, warn: Emit | None) -> None:
        self.report = report
        self._emit = emit or _ignore
        self._warn = warn or _ignore

    def line(self, text: str) -> None:
        self._emit(text)

    def lines(self, texts: list[str]) -> None:
        for text in texts:
            self._emit(text)

    def warning(self, text: str) -> None:
        self.report.warnings += 1
        self._warn(f"warning: {text}")

    def error(self, text: str) -> None:
        self.report.errors += 1
        self._warn(f"error: {text}")

    def blob_removed(self, digest: Digest, size: int) -> None:
        self.report.blobs_removed += 1
        self.report.bytes_freed += size
        self._emit(f"blob eligible for deletion: {digest}")

    def manifest_removed(self, repository: str, digest: Digest) -> None:
        self.report.manifests_removed += 1
        self._emit(f"manifest eligible for deletion: {repository}@{digest}")

    def link_removed(self, repository: str, digest: Digest) -> None:
        self.report.layer_links_removed += 1
        self._emit(f"{repository}: layer link eligible for deletion: {digest}")

    def kept(self, what: str, digest: Digest, reason: str) -> None:
        self.report.kept_recent += 1
        self._emit(f"{what} kept ({reason} within the grace delay): {digest}")
