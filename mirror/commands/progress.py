"""Progress on a terminal (rich), nothing elsewhere or with --quiet."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from mirror.archive.export import NoProgress
from mirror.archive.export import Progress as ProgressSink


class TerminalProgress:
    """Total bytes, rate and time left, and the blob being copied."""

    def __init__(self, progress: Progress, verb: str) -> None:
        self._progress = progress
        self._verb = verb
        self._task: TaskID | None = None

    def start(self, total: int, items: int) -> None:
        what = f"{items} blobs" if items else "archive"
        self._task = self._progress.add_task(f"{self._verb} {what}", total=total or None, item="")

    def advance(self, amount: int) -> None:
        if self._task is not None:
            self._progress.advance(self._task, amount)

    def item(self, name: str) -> None:
        if self._task is not None:
            self._progress.update(self._task, item=name.split(":", 1)[-1][:12])


@contextmanager
def progress_for(verb: str, *, quiet: bool) -> Iterator[ProgressSink]:
    """A progress sink: bars on stderr when it is a terminal and not `quiet`."""
    if quiet or not sys.stderr.isatty():
        yield NoProgress()
        return
    with bars() as progress:
        yield TerminalProgress(progress, verb)


def bars() -> Progress:
    """rich's Progress on stderr: description, bar, bytes, rate, time left, item."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[item]}"),
    )
    return Progress(*columns, console=Console(stderr=True), transient=True)


def size_text(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
