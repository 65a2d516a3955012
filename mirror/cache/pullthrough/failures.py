"""What a client is told when the upstream fails: domain errors and stale-serve warnings.

Upstream failures stay `UpstreamError`s up to the pull-through policy, which either serves
from the cache (with a warning) or raises what these functions build.
"""

from __future__ import annotations

from mirror.errors import (
    BlobUnknown,
    ManifestUnknown,
    RegistryError,
    TooManyRequests,
    Unavailable,
)
from mirror.upstream.api import UpstreamError, UpstreamNotFound, UpstreamRateLimited


def domain_error(exc: UpstreamError, upstream: str, what: str, *, blob: bool) -> RegistryError:
    """The error for a failed upstream request for `what` (nothing cached to serve)."""
    if isinstance(exc, UpstreamNotFound):
        unknown = BlobUnknown if blob else ManifestUnknown
        return unknown(f"{what} not found upstream at {upstream}")
    if isinstance(exc, UpstreamRateLimited):
        return TooManyRequests(
            f"upstream {upstream} is rate limiting and {what} is not cached",
            retry_after=exc.retry_after,
        )
    return Unavailable(f"{what} is not cached and upstream {upstream} is unavailable: {exc}")


def stale_warning(exc: UpstreamError, upstream: str) -> str:
    """The Warning text for content served from cache because of `exc`."""
    return f"upstream {upstream} unavailable ({exc}); serving cached content"
