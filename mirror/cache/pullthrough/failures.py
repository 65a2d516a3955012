"""What a client is told when the upstream fails: domain errors and stale-serve warnings.

Upstream failures stay `UpstreamError`s up to the pull-through policy, which either serves
from the cache (with a warning) or raises what these functions build. A Warning header
carries nothing the upstream sent (its error text may hold CR/LF, NUL or characters no
header can carry); what the upstream said goes to the log.
"""

from __future__ import annotations

import logging
import re

from mirror.errors import (
    BlobUnknown,
    ManifestUnknown,
    RegistryError,
    TooManyRequests,
    Unavailable,
)
from mirror.upstream.api import (
    UpstreamError,
    UpstreamNotFound,
    UpstreamRateLimited,
    UpstreamUnavailable,
)

log = logging.getLogger("mirror.cache")

_NOT_HEADER_SAFE = re.compile(r"[^\x20-\x7e]+")


def domain_error(exc: UpstreamError, upstream: str, what: str, *, blob: bool) -> RegistryError:
    """The error for a failed upstream request for `what` (nothing cached to serve).

    The message names the upstream only by its configured name; the upstream's own
    account (hosts, paths, its error text) is logged, not shown. A Retry-After the
    upstream sent with a 429 or 503 is passed on (registryhttp has checked its syntax).
    """
    if isinstance(exc, UpstreamNotFound):
        unknown = BlobUnknown if blob else ManifestUnknown
        return unknown(f"{what} not found upstream at {upstream}")
    log.info("%s: upstream %s failed: %s", what, upstream, exc.message)
    if isinstance(exc, UpstreamRateLimited):
        return TooManyRequests(
            f"upstream {upstream} is rate limiting and {what} is not cached",
            retry_after=exc.retry_after,
        )
    retry_after = exc.retry_after if isinstance(exc, UpstreamUnavailable) else None
    return Unavailable(
        f"{what} is not cached and upstream {upstream} is unavailable", retry_after=retry_after
    )


def stale_warning(exc: UpstreamError, upstream: str, what: str) -> str:
    """The Warning text for `what`, served from cache because of `exc` (which is logged)."""
    log.info("serving %s from cache: upstream %s failed: %s", what, upstream, exc.message)
    if isinstance(exc, UpstreamNotFound):
        return header_text(f"upstream {upstream} no longer has it; serving cached content")
    return header_text(f"upstream {upstream} unavailable; serving cached content")


def header_text(text: str) -> str:
    """`text` with every character that is not printable ASCII removed."""
    return _NOT_HEADER_SAFE.sub("", text)
