"""A file that is re-read when it changes on disk, checked with one `stat` per use.

No thread and no inotify: each `load()` compares the file's (device, inode, size,
mtime) with what was last read, which catches edits in place, `mv` over it and editors
that replace the file. A change within the mtime granularity that keeps the size is the
one case it cannot see; the check costs about a microsecond.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

T = TypeVar("T")
Signature = tuple[int, int, int, int]

log = logging.getLogger("mirror.auth")


def signature(path: Path) -> Signature | None:
    """(device, inode, size, mtime in ns) of `path`, or None when it cannot be stat'ed."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class WatchedFile(Generic[T]):
    """`load()` returns `parse(bytes)` of the file's current content.

    When the file changes, it is parsed again; when that fails (unreadable, missing, or
    `parse` raises ValueError) the error is logged once per change and
    `fallback(error, previous value or None)` is used instead. `on_change` runs after
    each re-read.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        parse: Callable[[bytes], T],
        fallback: Callable[[str, T | None], T],
        *,
        what: str,
        on_change: Callable[[T], None] | None = None,
    ) -> None:
        self.path = Path(path)
        self._parse = parse
        self._fallback = fallback
        self._what = what
        self._on_change = on_change
        self._state: tuple[Signature | None, T] | None = None
        self.reloads = 0

    def load(self) -> T:
        current = signature(self.path)
        state = self._state
        if state is not None and state[0] == current:
            return state[1]
        value = self._read(current, None if state is None else state[1])
        self._state = (current, value)
        self.reloads += 1
        if self._on_change is not None:
            self._on_change(value)
        return value

    def _read(self, current: Signature | None, previous: T | None) -> T:
        if current is None:
            error = f"{self._what} {self.path} cannot be read"
            log.error("%s", error)
            return self._fallback(error, previous)
        try:
            return self._parse(self.path.read_bytes())
        except (OSError, ValueError) as exc:
            error = f"{self._what} {self.path}: {exc}"
            log.error("%s", error)
            return self._fallback(error, previous)
