"""A circuit breaker per upstream: after repeated failures, stop waiting on it for a while.

Closed: requests go through. After `failures` consecutive failures it opens: requests
fail at once (the caller serves from cache) for `reset` seconds. Then it is half-open: one
request goes through as a trial; success closes it, failure opens it again.

`CircuitBreaker` is the state machine; `BreakerUpstream` puts it in front of an Upstream.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

from mirror.digests import Digest
from mirror.registryhttp.client import FetchedManifest, ManifestHead
from mirror.registryhttp.errors import UpstreamError, UpstreamUnavailable
from mirror.types import Descriptor
from mirror.upstream.api import BlobStream, Upstream, UpstreamDecorator

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
STATE_VALUES = {CLOSED: 0.0, HALF_OPEN: 1.0, OPEN: 2.0}


class CircuitBreaker:
    def __init__(
        self,
        failures: int = 5,
        reset: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = max(failures, 1)
        self.reset = reset
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_running = False

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return CLOSED
        if self._clock() - self._opened_at >= self.reset:
            return HALF_OPEN
        return OPEN

    def retry_in(self) -> float:
        """Seconds until an open breaker lets a trial through (0 when it is not open)."""
        if self._opened_at is None:
            return 0.0
        return max(self.reset - (self._clock() - self._opened_at), 0.0)

    def allow(self) -> bool:
        """Whether a request may go to the upstream now (claims the half-open trial)."""
        state = self.state
        if state == CLOSED:
            return True
        if state == HALF_OPEN and not self._trial_running:
            self._trial_running = True
            return True
        return False

    def success(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._trial_running = False

    def failure(self) -> None:
        self._failures += 1
        if self._trial_running or self._failures >= self.threshold:
            self._opened_at = self._clock()
        self._trial_running = False

    def release(self) -> None:
        """The request ended without telling anything about upstream health (e.g. a 404)."""
        if self._trial_running:
            self.success()


class BreakerUpstream(UpstreamDecorator):
    """Refuses requests while the breaker is open (UpstreamUnavailable, nothing sent) and
    tells the breaker how each request ended: failures marked `unhealthy` (connection,
    TLS, timeouts, 5xx) count; any other answer closes a half-open breaker, like a
    success. `on_state` hears the state after each request.

    For `open_blob` only the opening counts; a transfer that breaks later is the
    download's business, not the breaker's.
    """

    def __init__(
        self,
        inner: Upstream,
        breaker: CircuitBreaker,
        *,
        on_state: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(inner)
        self.breaker = breaker
        self._on_state = on_state

    @asynccontextmanager
    async def _guarded(self) -> AsyncIterator[None]:
        if not self.breaker.allow():
            raise UpstreamUnavailable(
                f"upstream {self.name} failed repeatedly; not asking it for a while",
                retry_after=str(max(math.ceil(self.breaker.retry_in()), 1)),
            )
        try:
            yield
        except UpstreamError as exc:
            # Only failures that say the upstream is down count. A 401/403/404/429 or a
            # bad body is an answer about one request, and a client can ask for as many
            # of those as it likes: counting them would let it shut the upstream out.
            if exc.unhealthy:
                self.breaker.failure()
            else:
                self.breaker.release()
            raise
        except BaseException:
            self.breaker.release()
            raise
        else:
            self.breaker.success()
        finally:
            if self._on_state is not None:
                self._on_state(self.breaker.state)

    async def head_manifest(self, repo: str, reference: str, accept: Sequence[str]) -> ManifestHead:
        async with self._guarded():
            return await self.inner.head_manifest(repo, reference, accept)

    async def get_manifest(
        self, repo: str, reference: str, accept: Sequence[str]
    ) -> FetchedManifest:
        async with self._guarded():
            return await self.inner.get_manifest(repo, reference, accept)

    async def head_blob(self, repo: str, digest: Digest) -> int | None:
        async with self._guarded():
            return await self.inner.head_blob(repo, digest)

    async def open_blob(self, repo: str, digest: Digest, offset: int = 0) -> BlobStream:
        async with self._guarded():
            return await self.inner.open_blob(repo, digest, offset)

    async def list_tags(self, repo: str) -> list[str]:
        async with self._guarded():
            return await self.inner.list_tags(repo)

    async def referrers(
        self, repo: str, digest: Digest, artifact_type: str | None
    ) -> list[Descriptor]:
        async with self._guarded():
            return await self.inner.referrers(repo, digest, artifact_type)

    async def catalog(self) -> list[str]:
        async with self._guarded():
            return await self.inner.catalog()
