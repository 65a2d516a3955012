"""`mirror copy`'s progress on a terminal: a bar per blob in flight and one for the
total (bytes, rate, time left); nothing when standard error is not a terminal, or with
--quiet. rich is imported only when there is a terminal to draw on."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from mirror.client.copy import NoProgress
from mirror.client.copy import Progress as CopyProgress
from mirror.digests import Digest

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID


class CopyBars:
    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._total: TaskID | None = None
        self._blobs: dict[Digest, TaskID] = {}

    def start(self, total: int, items: int) -> None:
        self._total = self._progress.add_task(
            f"copying {items} blobs", total=total or None, item=""
        )

    def blob_started(self, digest: Digest, size: int) -> None:
        self._blobs[digest] = self._progress.add_task(
            f"  {digest.hex[:12]}", total=size or None, item=""
        )

    def advance(self, digest: Digest, amount: int) -> None:
        task = self._blobs.get(digest)
        if task is not None:
            self._progress.advance(task, amount)
        if self._total is not None:
            self._progress.advance(self._total, amount)

    def blob_done(self, digest: Digest) -> None:
        task = self._blobs.pop(digest, None)
        if task is not None:
            self._progress.remove_task(task)


@contextmanager
def copy_progress(*, quiet: bool) -> Iterator[CopyProgress]:
    if quiet or not sys.stderr.isatty():
        yield NoProgress()
        return
    # Only on a terminal: the bars' module brings rich (and the export code) along.
    from mirror.commands.progress import bars

    with bars() as progress:
        yield CopyBars(progress)
