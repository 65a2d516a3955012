"""An endpoint's event queue on local disk: diskcache's queue (SQLite in WAL mode).

Entries are diskcache queue items (`Cache.push`/`pull`: integer keys in order, as its
`Deque` uses them) in a directory of their own; appending and trimming to the limit are
one SQLite transaction, committed before `append` returns, so a SIGKILL right after
loses nothing (WAL with ``synchronous=NORMAL`` survives a process crash; a power cut
may lose the last commits). Every database call runs in a worker thread: a commit can
wait behind other disk traffic and the event loop must not wait with it.

The claim is an ``flock`` on a file in the directory: the processes of one host (the
workers of ``http.workers``) take turns, and the kernel ends a killed holder's claim at
once, so a restarted process delivers what was in flight without waiting for a ttl.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

import diskcache
from anyio import to_thread

from mirror.coordination.leases import Lease, new_token
from mirror.events.queue import QueuedEvent, QueueError, check_limit

# Events stay inside SQLite (no side files): one transaction covers an entry entirely.
_IN_DATABASE = 2**22


@contextlib.contextmanager
def _local_errors(action: str, where: Path) -> Iterator[None]:
    try:
        yield
    except (sqlite3.Error, diskcache.Timeout, OSError) as exc:
        raise QueueError(f"event queue {where}: {action} failed: {exc}") from exc


class _FlockClaim(Lease):
    """A claim that lasts while the file descriptor holding the flock is open."""

    def __init__(self, fd: int, ttl: float) -> None:
        super().__init__("deliver", new_token(), ttl, b"")
        self._fd: int | None = fd

    async def renew(self) -> bool:
        return self._fd is not None

    async def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            # Closing drops the lock; unlocking first keeps it from outliving a dup'd fd.
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


class DiskEventQueue:
    """`EventQueue` in `directory` (created if missing), one directory per endpoint.

    `timeout` bounds how long a call waits for another process's SQLite write lock
    before raising `QueueError`.
    """

    def __init__(self, directory: str | Path, *, limit: int = 100_000, timeout: float = 5.0):
        self._dir = Path(directory)
        self._limit = check_limit(limit)
        with _local_errors("open", self._dir):
            self._dir.mkdir(parents=True, exist_ok=True)
            self._cache = diskcache.Cache(
                str(self._dir),
                timeout=timeout,
                eviction_policy="none",
                disk_min_file_size=_IN_DATABASE,
                statistics=False,
                tag_index=False,
            )
        self._lock_path = self._dir / "deliver.lock"

    @property
    def description(self) -> str:
        return f"disk {self._dir}"

    @property
    def limit(self) -> int:
        return self._limit

    def _append(self, payloads: Sequence[bytes]) -> int:
        cache = self._cache
        with _local_errors("append", self._dir), cache.transact():
            for payload in payloads:
                cache.push(bytes(payload))
            dropped = 0
            for _ in range(len(cache) - self._limit):
                key, _value = cache.pull()
                if key is None:
                    break
                dropped += 1
            return dropped

    async def append(self, payloads: Sequence[bytes]) -> int:
        if not payloads:
            return 0
        return await to_thread.run_sync(self._append, list(payloads))

    async def claim(self, ttl: float) -> Lease | None:
        with _local_errors("claim", self._dir):
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return None
            except BaseException:
                os.close(fd)
                raise
        return _FlockClaim(fd, ttl)

    def _peek(self, limit: int) -> list[QueuedEvent]:
        found: list[QueuedEvent] = []
        with _local_errors("read", self._dir):
            for key in self._cache.iterkeys():
                if len(found) >= limit:
                    break
                value = self._cache.get(key)
                # None: removed or dropped since the key was listed.
                if isinstance(value, bytes):
                    found.append(QueuedEvent(str(key), value))
        return found

    async def peek(self, limit: int) -> list[QueuedEvent]:
        return await to_thread.run_sync(self._peek, limit)

    def _remove(self, keys: Sequence[str]) -> None:
        # Keys are reused only once the queue has been empty, which happens after the
        # claimant removed everything it had read, so a key never names a newer entry.
        with _local_errors("remove", self._dir), self._cache.transact():
            for key in keys:
                self._cache.delete(int(key))

    async def remove(self, keys: Sequence[str]) -> None:
        if keys:
            await to_thread.run_sync(self._remove, list(keys))

    async def size(self) -> int:
        with _local_errors("count", self._dir):
            return len(self._cache)

    async def aclose(self) -> None:
        # Worker threads' connections close with their threads; this is the loop's.
        self._cache.close()
