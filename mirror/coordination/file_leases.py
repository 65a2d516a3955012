"""Leases between processes on one host, through files in a shared directory.

Each leased key has a record file (named by the SHA-256 of the key) holding the token,
the expiry time, the holding process (`mirror.coordination.liveness`) and the holder's
info. A record whose holding process is known to have died counts as free at once.
Records are read and changed only while holding an ``fcntl.flock`` on one of a fixed set
of stripe lock files, so the lock files never need deleting (deleting a file others may
be locking would break the mutual exclusion) and record files can be removed on release.

Expiry uses the wall clock, which every process on the host shares. Waiters in the same
process are woken at once; waiters in other processes notice a release by polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

from mirror.coordination import liveness
from mirror.coordination.failover import BackendUnavailable
from mirror.coordination.leases import Lease, OwnedLease, Wakeups, check_lease_ttl, new_token

_STRIPES = 64
_MAGIC = b"mirror-lease-1"


class FileCoordinator:
    """`Coordinator` over lock and record files in `directory` (created if missing).

    Stripe locks are taken without blocking the event loop: a busy lock is retried every
    millisecond up to `lock_timeout`, after which the call raises `BackendUnavailable`
    (another process stopped inside its few-microsecond critical section).
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        poll_interval: float = 0.1,
        lock_timeout: float = 5.0,
    ) -> None:
        self._dir = Path(directory)
        self._dir.mkdir(parents=True, exist_ok=True)
        self._poll = poll_interval
        self._lock_timeout = lock_timeout
        self._lock_fds: dict[int, int] = {}
        self._wakeups = Wakeups()

    def _names(self, key: str) -> tuple[int, Path]:
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        return int(digest[:8], 16) % _STRIPES, self._dir / f"{digest}.lease"

    def _lock_fd(self, stripe: int) -> int:
        fd = self._lock_fds.get(stripe)
        if fd is None:
            path = self._dir / f"stripe-{stripe:02d}.lock"
            fd = self._lock_fds[stripe] = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        return fd

    async def _locked(self, key: str) -> tuple[int, Path]:
        """Take the stripe lock of `key` and return its fd and the record path. The
        caller releases it (``with self._held(fd)``) before its next await.
        """
        stripe, record = self._names(key)
        fd = self._lock_fd(stripe)
        deadline = time.monotonic() + self._lock_timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd, record
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise BackendUnavailable(f"lease lock for {key!r} stayed busy") from None
                await asyncio.sleep(0.001)

    @staticmethod
    def _read(record: Path) -> tuple[str, float, bytes] | None:
        """The live (token, expires, info) in `record`, or None when free, expired or
        held by a process that died."""
        try:
            data = record.read_bytes()
        except FileNotFoundError:
            return None
        # Records of versions before the holder field have four fields; as those
        # versions split at most three times, they read this one's as info.
        parts = data.split(b"\n", 4)
        if len(parts) not in (4, 5) or parts[0] != _MAGIC:
            return None  # torn by a holder that died while writing: free
        try:
            expires = float(parts[2])
        except ValueError:
            return None
        if expires <= time.time():
            return None
        if len(parts) == 5 and liveness.is_dead(parts[3]):
            return None
        return parts[1].decode("ascii", "replace"), expires, parts[-1]

    @staticmethod
    def _write(record: Path, token: str, ttl: float, info: bytes) -> None:
        expires = repr(time.time() + ttl).encode()
        holder = liveness.holder_id()
        record.write_bytes(b"\n".join((_MAGIC, token.encode(), expires, holder, info)))

    @staticmethod
    @contextlib.contextmanager
    def _held(fd: int) -> Iterator[None]:
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    async def acquire(self, key: str, ttl: float, info: bytes = b"") -> Lease | None:
        check_lease_ttl(ttl)
        fd, record = await self._locked(key)
        with self._held(fd):
            if self._read(record) is not None:
                return None
            token = new_token()
            self._write(record, token, ttl, info)
        return OwnedLease(self, key, token, ttl, info)

    async def renew_lease(self, lease: Lease) -> bool:
        fd, record = await self._locked(lease.key)
        with self._held(fd):
            current = self._read(record)
            if current is not None and current[0] != lease.token:
                return False
            self._write(record, lease.token, lease.ttl, lease.info)
        return True

    async def release_lease(self, lease: Lease) -> None:
        fd, record = await self._locked(lease.key)
        with self._held(fd):
            current = self._read(record)
            if current is None or current[0] != lease.token:
                return
            record.unlink(missing_ok=True)
        self._wakeups.wake(lease.key)

    async def holder_info(self, key: str) -> bytes | None:
        fd, record = await self._locked(key)
        with self._held(fd):
            current = self._read(record)
        return None if current is None else current[2]

    async def wait_released(self, key: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._wakeups.watch(key) as released:
            while True:
                fd, record = await self._locked(key)
                with self._held(fd):
                    current = self._read(record)
                if current is None:
                    return True
                now = time.monotonic()
                if now >= deadline:
                    return False
                # Other processes' releases are seen by polling; an expiry by timing.
                until_expiry = max(0.0, current[1] - time.time()) + 0.001
                try:
                    await asyncio.wait_for(
                        released.wait(), min(self._poll, until_expiry, deadline - now)
                    )
                except TimeoutError:
                    continue
                return True

    async def aclose(self) -> None:
        for fd in self._lock_fds.values():
            os.close(fd)
        self._lock_fds.clear()
