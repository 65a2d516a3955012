"""The checks that make a collection safe next to a serving registry.

The mark phase sees the store as it was when each repository was listed; pushes, mounts
and pulls go on meanwhile. Before anything is deleted the sweep asks this guard:

1. Grace delay: content whose files were modified since `cutoff` (the start of the
   collection minus `delay`) is kept: a blob uploaded, a link written or a manifest
   pushed during the collection, or shortly before it, is never a candidate.
2. Access log: content the store touched since `cutoff` is kept (a blob checked for
   existence, mounted or pulled; a manifest referenced by a push being verified).
3. Deletion marks: right before deleting, the collector marks the digest as being
   deleted, reads the access log again, deletes, and withdraws the mark. A store
   operation that makes content depend on a digest (a manifest PUT on its blobs and
   children, a mount, an upload that finds its blob already stored) does the mirror
   image: touch durably, then check the mark, then check that the content exists, then
   commit. Whatever the interleaving, either the collector's re-read sees the touch
   and keeps the digest, or the store sees the mark (and treats the digest as missing)
   or sees that the content is gone - never a committed manifest without its blob.

Without an access log (the offline command on a stopped registry) only the grace delay
applies, as with registry:2 plus its missing grace period.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager

from mirror.coordination.accesslog import AccessLog, DeletionMarks
from mirror.digests import Digest

DEFAULT_MARK_TTL = 300.0


class CollectionStopped(Exception):
    """The collection must stop before deleting more (its lease was lost)."""


class SweepGuard:
    def __init__(
        self,
        cutoff: float,
        *,
        access_log: AccessLog | None = None,
        marks: DeletionMarks | None = None,
        mark_ttl: float = DEFAULT_MARK_TTL,
        stop: Callable[[], bool] | None = None,
    ) -> None:
        self.cutoff = cutoff
        self._log = access_log
        self._marks = marks
        self._mark_ttl = mark_ttl
        self._stop = stop

    async def recent(self, digest: Digest, mtimes: Iterable[float]) -> str | None:
        """Why `digest` must be kept ("modified", "used"), or None when it may go."""
        if any(mtime >= self.cutoff for mtime in mtimes):
            return "modified"
        if self._log is not None:
            used = (await self._log.last_used([digest]))[0]
            if used is not None and used >= self.cutoff:
                return "used"
        return None

    @asynccontextmanager
    async def deleting(self, digests: Sequence[Digest]) -> AsyncIterator[list[str | None]]:
        """Mark `digests`, re-check them, and yield for each None when its deletion may
        go ahead (delete inside the block) or the reason to keep it. The marks are
        withdrawn on exit. Raises CollectionStopped when the collection must stop."""
        if self._stop is not None and self._stop():
            raise CollectionStopped("the garbage collection lease was lost")
        marks = self._marks
        if marks is not None:
            await asyncio.gather(*(marks.mark(digest, self._mark_ttl) for digest in digests))
        try:
            reasons: list[str | None] = [None] * len(digests)
            if self._log is not None:
                used = await self._log.last_used(digests)
                reasons = [
                    "used" if moment is not None and moment >= self.cutoff else None
                    for moment in used
                ]
            yield reasons
        finally:
            if marks is not None:
                await asyncio.gather(*(marks.unmark(digest) for digest in digests))
