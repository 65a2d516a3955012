"""Failures of the upstream registry client.

The caching layer must tell "the upstream says it is not there" (`UpstreamNotFound`) from
"we cannot ask the upstream right now" (everything else), because only the second one may
be answered from the cache. No httpx exception ever leaves `mirror.registryhttp`; every
failure is one of these classes. `message` is meant for logs and may name the upstream's
host; it may also carry text the upstream sent, so it is never put in a header as is.

`unhealthy` tells failures that say the upstream (or its token service) is down or
broken - connection, TLS, timeouts, 5xx - from answers about one request (401, 403, 404,
429, other 4xx, content that does not check out), which a client can provoke at will.
"""

from __future__ import annotations


class UpstreamError(Exception):
    """Base of every upstream failure; `status` is the HTTP status when there was one.

    `unhealthy` defaults to "the status is a 5xx"; pass it to say otherwise.
    """

    def __init__(
        self, message: str = "", *, status: int | None = None, unhealthy: bool | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.unhealthy = self._server_failed() if unhealthy is None else unhealthy

    def _server_failed(self) -> bool:
        return self.status is not None and self.status >= 500


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
    answer the client cannot use. `retry_after` carries a Retry-After header when one came.

    Unhealthy unless it carries a status below 500 (an unexpected 4xx, 2xx or 3xx)."""

    def __init__(
        self,
        message: str = "",
        *,
        status: int | None = None,
        retry_after: str | None = None,
        unhealthy: bool | None = None,
    ) -> None:
        super().__init__(message, status=status, unhealthy=unhealthy)
        self.retry_after = retry_after

    def _server_failed(self) -> bool:
        return self.status is None or self.status >= 500


class UpstreamContentError(UpstreamError):
    """The upstream sent content that does not match its digest or declared size, or a
    manifest larger than any manifest may be."""
