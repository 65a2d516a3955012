"""What every upload session shares: one writer at a time, and this process's hashes.

The requests that change a session (a PATCH appending, the PUT that verifies and commits
it, a DELETE) may arrive at different workers, processes or replicas. Each runs holding
the session's lease from the coordinator the store was built with (`LocalCoordinator`
in one process, `FileCoordinator` between the processes of one host, Redis with a local
fallback across hosts), kept alive while the request streams. So a PUT can never verify
and publish a session while a PATCH is still writing into it, nor two PATCHes interleave.

A request that finds the session busy waits for it, up to `wait` seconds, then gives up
with `UploadBusy` (409). Waiting rather than failing at once lets a PATCH that is just
finishing complete, so a client that sends the PUT the moment its chunk was sent still
succeeds; the bound keeps a stalled or hostile PATCH from tying up other requests for
long. `wait` is longer than the lease's ttl, so a holder that died (a killed worker
cannot release) delays the next request of its session by up to one ttl, but never fails
it: a client resuming after a crash gets through.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from mirror.coordination.leases import Coordinator, Lease
from mirror.digests import DigestHasher
from mirror.errors import UploadBusy
from mirror.store.exclusive import exclusive

UPLOAD_LEASE_TTL = 10.0
UPLOAD_WAIT = 15.0

SessionKey = tuple[str, str]  # (repository, upload id)


def lease_key(key: SessionKey) -> str:
    """The coordinator key of an upload session's lease."""
    name, upload_id = key
    return f"upload:{name}/{upload_id}"


class HashStates:
    """Per-process running hashes of upload sessions, bounded (LRU).

    Only an optimisation: a session whose chunks went to another process has no state
    here (or a stale one, for fewer bytes), and is hashed again from its data at commit.
    """

    def __init__(self, limit: int = 1024) -> None:
        self._states: OrderedDict[SessionKey, DigestHasher] = OrderedDict()
        self._limit = limit

    def __len__(self) -> int:
        return len(self._states)

    def take(self, key: SessionKey, size: int) -> DigestHasher | None:
        """The running hash for `key` if it covers exactly `size` bytes (removed here)."""
        state = self._states.pop(key, None)
        return state if state is not None and state.size == size else None

    def keep(self, key: SessionKey, state: DigestHasher) -> None:
        self._states[key] = state
        while len(self._states) > self._limit:
            self._states.popitem(last=False)

    def forget(self, key: SessionKey) -> None:
        self._states.pop(key, None)


class UploadSessions:
    """The coordinator that orders each session's requests, and the hash states."""

    def __init__(
        self,
        coordinator: Coordinator,
        *,
        lease_ttl: float = UPLOAD_LEASE_TTL,
        wait: float = UPLOAD_WAIT,
        hash_limit: int = 1024,
    ) -> None:
        self.coordinator = coordinator
        self.lease_ttl = lease_ttl
        self.wait = wait
        self.hashes = HashStates(hash_limit)

    @asynccontextmanager
    async def exclusive(self, key: SessionKey) -> AsyncIterator[Lease]:
        """Hold the session's lease while inside (renewed in the background).

        Waits up to `wait` seconds for another holder, then raises UploadBusy; raises
        Unavailable when the coordinator cannot be asked (InsufficientStorage when it
        cannot write its lease files on a full disk). The lease is released on exit.
        Check `lease.lost` before making a change final: it is True when the lease ran
        out (this process stalled past its ttl) and someone else took the session.
        """
        upload_id = key[1]

        def busy() -> UploadBusy:
            return UploadBusy(
                f"upload {upload_id} is busy: another request is writing to it; "
                "retry once that request has finished"
            )

        async with exclusive(
            self.coordinator,
            lease_key(key),
            ttl=self.lease_ttl,
            wait=self.wait,
            busy=busy,
            what=f"upload {upload_id}",
        ) as lease:
            yield lease
