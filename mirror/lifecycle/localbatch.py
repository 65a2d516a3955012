"""Batched listings and deletions for drivers whose files are local (`LocalPath`).

The filesystem driver runs each `list` and `delete` in a worker thread, and the hop
costs more than the syscall it carries (about 60 us of CPU against 10 us for unlinking a
file). A collection makes tens of thousands of such calls, so on a local driver it hands
whole batches to one worker-thread call instead. The semantics are the driver's: names
of hidden temp files are left out of listings, a missing path lists as empty or deletes
as False, a directory is deleted with its tree, and any other OS error becomes a
`StorageDriverError`. Other drivers get one driver call per path (see `layout`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence

from anyio import to_thread

from mirror.store.driver import LocalPath, StorageDriverError
from mirror.store.drivers.base import is_temp_name

_MISSING = (FileNotFoundError, NotADirectoryError)


class LocalBatch:
    def __init__(self, driver: LocalPath) -> None:
        self._driver = driver

    async def listdirs(self, paths: Sequence[str]) -> list[list[str]]:
        """Sorted child names of each directory (empty when missing), in order."""
        return await to_thread.run_sync(self._listdirs, list(paths))

    async def delete(self, paths: Sequence[str]) -> list[bool | StorageDriverError]:
        """Delete each file or tree, in order: True, False for a path that was already
        gone, or the error that kept it (the others are still deleted)."""
        return await to_thread.run_sync(self._delete, list(paths))

    def _listdirs(self, paths: list[str]) -> list[list[str]]:
        found = []
        for path in paths:
            try:
                names = os.listdir(self._driver.local_path(path))
            except _MISSING:
                names = []
            except OSError as exc:
                raise _error("list", path, exc) from exc
            found.append(sorted(name for name in names if not is_temp_name(name)))
        return found

    def _delete(self, paths: list[str]) -> list[bool | StorageDriverError]:
        done: list[bool | StorageDriverError] = []
        for path in paths:
            local = self._driver.local_path(path)
            try:
                try:
                    os.unlink(local)
                except IsADirectoryError:
                    shutil.rmtree(local)
            except _MISSING:
                done.append(False)
                continue
            except OSError as exc:
                done.append(_error("delete", path, exc))
                continue
            done.append(True)
        return done


def _error(operation: str, path: str, exc: OSError) -> StorageDriverError:
    reason = exc.strerror or type(exc).__name__
    return StorageDriverError(f"{operation} {path} failed: {reason}", path=path)
