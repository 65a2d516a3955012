"""Failures of the upstream registry client.

The caching layer must tell "the upstream says it is not there" (`UpstreamNotFound`) from
"we cannot ask the upstream right now" (everything else), because only the second one may
be answered from the cache. No httpx exception ever leaves `mirror.upstream`; every failure
is one of these classes. `message` is meant for logs and may name the upstream's host.
"""

from __future__ import annotations


class UpstreamError(Exception):
    """Base of every upstream failure; `status` is the HTTP status when there was one."""

    def __init__(self, message: str = "", *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class UpstreamNotFound(UpstreamError):
    """The upstream answered 404: the repository, manifest or blob does not exist there."""


class UpstreamRateLimited(UpstreamError):
    """The upstream answered 429; `retry_after` is its Retry-After header, verbatim."""

    def __init__(
        self, message: str = "", *, status: int | None = 429, retry_after: str | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class UpstreamAuthError(UpstreamError):
    """Authentication failed: 401/403 after the auth flow, or the token endpoint failed."""


class UpstreamUnavailable(UpstreamError):
    """The upstream cannot be asked now: network, TLS, timeout, 5xx, protocol errors, or an
    answer the client cannot use. `retry_after` carries a Retry-After header when one came."""

    def __init__(
        self, message: str = "", *, status: int | None = None, retry_after: str | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class UpstreamContentError(UpstreamError):
    """The upstream sent content that does not match its digest or declared size, or a
    manifest larger than any manifest may be."""
