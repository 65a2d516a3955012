"""`RegistrySession`: the HTTP exchange with one registry that every operation goes through.

One pooled httpx.AsyncClient per registry. Every request goes through three layers:
`_retry` (bounded exponential backoff for idempotent requests on connection errors,
timeouts and 502/503/504, all within one deadline per request), `_authorized` (token or
Basic auth, one retry after a 401), and `_follow` (redirects followed by hand, so the
registry's `Authorization` never reaches another origin - blob GETs are routinely
redirected to object stores and CDNs). Unless a transport is given, connections go
through `registryhttp.addresses`' guard: hosts other than the registry's own are dialled
only on public addresses, unless the registry itself is on a private one.

The operations live in `DistributionClient` (pulls, `registryhttp.client`) and its base
`PushOperations` (pushes, `registryhttp.pushing`); every failure is an UpstreamError.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import ssl
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import quote

import httpx
from httpcore._async.http11 import AsyncHTTP11Connection

from mirror import requestid
from mirror.registryhttp.addresses import guarded_transport
from mirror.registryhttp.auth import RegistryAuth, parse_challenges
from mirror.registryhttp.blob import MIN_RATE, RATE_WINDOW
from mirror.registryhttp.errors import (
    UpstreamAuthError,
    UpstreamContentError,
    UpstreamError,
    UpstreamNotFound,
    UpstreamRateLimited,
    UpstreamUnavailable,
)
from mirror.registryhttp.headers import ascii_int, quota, valid_retry_after
from mirror.types import MAX_MANIFEST_SIZE

log = logging.getLogger("mirror.registryhttp.client")

# httpcore reads at most 64 KiB per socket read, and h11 then costs a Python round per
# read: blob downloads ran at ~530 MB/s on asyncio. 1 MiB reads reach ~1,300 MB/s here.
# (A class attribute: this applies to every httpx client in the process.)
AsyncHTTP11Connection.READ_NUM_BYTES = max(AsyncHTTP11Connection.READ_NUM_BYTES, 1 << 20)

T = TypeVar("T")

# A manifest may be 4 MiB; a little slack so an exactly-at-limit one is not cut short.
MANIFEST_BODY_LIMIT = MAX_MANIFEST_SIZE + 64 * 1024
MAX_REDIRECTS = 5
# Blob chunks are handed on as they arrive (None): the first byte reaches the first
# client without waiting for a buffer to fill; the store's writers batch small writes.
BLOB_CHUNK_SIZE: int | None = None
USER_AGENT = "mirror-registry/0.1"
_ERROR_BODY_LIMIT = 64 * 1024
_RETRY_STATUSES = frozenset({502, 503, 504})
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS = {"http": 80, "https": 443}

Origin = tuple[str, str, int]
# A request body: bytes can be sent again (after a 401, a redirect); a stream cannot.
Content = bytes | AsyncIterable[bytes] | None


@dataclass(frozen=True, slots=True)
class RateLimit:
    """The upstream's last reported pull quota (Docker Hub `ratelimit-*` headers)."""

    limit: int
    remaining: int | None
    window: int | None  # seconds


class _Transient(UpstreamUnavailable):
    """A failure worth retrying; never leaves this module's `_retry` and `final`."""


class RegistrySession:
    """An httpx-based exchange with one registry. Close it with `aclose()`."""

    def __init__(
        self,
        base_url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        identity_token: str | None = None,
        name: str = "",
        transport: httpx.AsyncBaseTransport | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        retries: int = 2,
        backoff: float = 0.2,
        deadline: float | None = None,
        max_connections: int = 64,
        blob_chunk_size: int | None = BLOB_CHUNK_SIZE,
        blob_min_rate: float = MIN_RATE,
        blob_rate_window: float = RATE_WINDOW,
        blob_deadline: float | None = None,
        allow_private_targets: bool | None = None,
        tls: ssl.SSLContext | bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        base = httpx.URL(base_url)
        if base.scheme not in _DEFAULT_PORTS or not base.host:
            raise ValueError(f"upstream URL must be http(s)://host[:port]: {base_url!r}")
        self._base = str(base).rstrip("/")
        self._origin = _origin(base)
        self.name = name or base.host
        self._retries = max(0, retries)
        self._backoff = max(0.0, backoff)
        # One request, its retries included, gets this long: a hung upstream would
        # otherwise cost (retries + 1) read timeouts before the caller hears of it.
        self._deadline = deadline if deadline is not None else connect_timeout + read_timeout
        self._chunk_size = blob_chunk_size
        self._blob_pace = (blob_min_rate, blob_rate_window, blob_deadline)
        limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        if transport is None:
            # Redirect targets and token realms are dialled only on public addresses,
            # unless the upstream itself is not (see registryhttp.addresses).
            transport = guarded_transport(
                base.host, internal=allow_private_targets, limits=limits, verify=tls
            )
        # trust_env off: proxies and CA bundles come from configuration, not the environment.
        self._http = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(
                connect=connect_timeout, read=read_timeout, write=read_timeout, pool=read_timeout
            ),
            limits=limits,
            follow_redirects=False,
            http2=False,
            trust_env=False,
            headers={"User-Agent": USER_AGENT},
        )
        self._auth = RegistryAuth(
            self._http,
            username=username,
            password=password,
            name=self.name,
            secure=base.scheme == "https",
            identity_token=identity_token,
            clock=clock,
        )
        self._ratelimit: RateLimit | None = None

    @property
    def ratelimit(self) -> RateLimit | None:
        """The quota the registry last reported, or None if it never did."""
        return self._ratelimit

    async def aclose(self) -> None:
        """Close the connection pool. Idempotent; open blobs should be closed first."""
        await self._http.aclose()

    async def _read_limited(self, response: httpx.Response) -> bytes:
        where = f"{self.name}: manifest {response.request.url.path}"
        declared = int_header(response, "content-length")
        encoded = response.headers.get("content-encoding", "identity").lower() != "identity"
        if declared is not None and declared > MANIFEST_BODY_LIMIT and not encoded:
            raise UpstreamContentError(f"{where}: {declared} bytes is too large", status=200)
        body = bytearray()
        try:
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MANIFEST_BODY_LIMIT:
                    raise UpstreamContentError(f"{where}: body too large", status=200)
        except httpx.HTTPError as exc:
            raise _classify(exc, where) from exc
        return bytes(body)

    async def _retry(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """Run `attempt`, retrying transient failures, all within the deadline."""
        loop = asyncio.get_running_loop()
        ends = loop.time() + self._deadline
        tries = 0
        while True:
            try:
                async with asyncio.timeout_at(ends) as limit:
                    return await attempt()
            except TimeoutError:
                if not limit.expired():
                    raise
                raise UpstreamUnavailable(
                    f"{self.name}: no answer within {self._deadline:g}s"
                ) from None
            except _Transient as exc:
                delay = self._backoff * 2**tries * (0.5 + random.random() / 2)
                if tries >= self._retries or loop.time() + delay >= ends:
                    raise UpstreamUnavailable(
                        exc.message, status=exc.status, retry_after=exc.retry_after
                    ) from exc.__cause__
                log.info("retrying after %s (in %.2fs)", exc.message, delay)
                tries += 1
                await asyncio.sleep(delay)

    async def _once(
        self,
        method: str,
        path: str,
        scope: str,
        headers: dict[str, str],
        *,
        content: Content = None,
        url: httpx.URL | None = None,
    ) -> httpx.Response:
        """One attempt: auth, redirects. Returns a 2xx response whose body is unread.

        `url` (an upload's location) replaces the base URL and `path`."""
        url = url if url is not None else httpx.URL(self._base + path)
        where = f"{self.name}: {method} {url.path}"
        try:
            response = await self._authorized(method, url, scope, headers, content)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise _classify(exc, where) from exc
        if response.is_success:
            return response
        body = await discard(response)
        raise _failure(response, where, body)

    async def _authorized(
        self,
        method: str,
        url: httpx.URL,
        scope: str,
        headers: dict[str, str],
        content: Content = None,
    ) -> httpx.Response:
        sent = self._auth.authorization(scope)
        response = await self._follow(method, url, headers, sent, content)
        # A 401 from another origin (a redirect target) is not ours to answer.
        if response.status_code != 401 or _origin(response.url) != self._origin:
            return response
        challenges = parse_challenges(response.headers.get_list("www-authenticate"))
        await discard(response)
        retry_with = await self._auth.answer(challenges, scope, sent)
        if not _replayable(content):
            raise UpstreamAuthError(f"{self.name}: {method} {url.path} refused (401)", status=401)
        return await self._follow(method, url, headers, retry_with, content)

    async def _follow(
        self,
        method: str,
        url: httpx.URL,
        headers: dict[str, str],
        authorization: str | None,
        content: Content = None,
    ) -> httpx.Response:
        for hop in range(MAX_REDIRECTS + 1):
            own = _origin(url) == self._origin
            hop_headers = dict(headers)
            if authorization is not None and own:
                hop_headers["Authorization"] = authorization
            request_id = requestid.current()
            if request_id is not None and own:
                # The upstream's logs can be matched with ours (a redirect's target is
                # someone else: a storage service).
                hop_headers[requestid.HEADER] = request_id
            request = self._http.build_request(method, url, headers=hop_headers, content=content)
            response = await self._http.send(request, stream=True)
            if own:
                self._note_ratelimit(response)
            location = response.headers.get("location")
            if response.status_code not in _REDIRECT_STATUSES or location is None:
                return response
            if not _replayable(content):
                return response  # a failure: a stream's body is gone
            await discard(response)
            if hop == MAX_REDIRECTS:
                break
            url = response.url.join(location)
            if url.scheme not in _DEFAULT_PORTS:
                raise UpstreamUnavailable(f"{self.name}: redirect to unsupported URL {url.scheme}:")
        raise UpstreamUnavailable(f"{self.name}: more than {MAX_REDIRECTS} redirects")

    def _note_ratelimit(self, response: httpx.Response) -> None:
        limit = quota(response.headers.get("ratelimit-limit"))
        if limit is None:
            return
        remaining = quota(response.headers.get("ratelimit-remaining"))
        self._ratelimit = RateLimit(
            limit=limit[0],
            remaining=remaining[0] if remaining is not None else None,
            window=limit[1],
        )


async def final(attempt: Awaitable[T]) -> T:
    """An attempt that is not retried: a transient failure is an UpstreamUnavailable."""
    try:
        return await attempt
    except _Transient as exc:
        raise UpstreamUnavailable(
            exc.message, status=exc.status, retry_after=exc.retry_after
        ) from exc.__cause__


def _replayable(content: Content) -> bool:
    return content is None or isinstance(content, bytes)


def _failure(response: httpx.Response, where: str, body: bytes) -> UpstreamError:
    status = response.status_code
    message = f"{where} -> {status}{_error_detail(body)}"
    retry_after = valid_retry_after(response.headers.get("retry-after"))
    if status == 404:
        return UpstreamNotFound(message, status=status)
    if status == 429:
        return UpstreamRateLimited(message, status=status, retry_after=retry_after)
    if status in (401, 403):
        return UpstreamAuthError(message, status=status)
    if status in _RETRY_STATUSES:
        return _Transient(message, status=status, retry_after=retry_after)
    return UpstreamUnavailable(message, status=status, retry_after=retry_after)


def _classify(exc: Exception, where: str) -> UpstreamUnavailable:
    message = f"{where}: {type(exc).__name__}: {exc}"
    if isinstance(exc, httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError):
        return _Transient(message)
    return UpstreamUnavailable(message)


def _error_detail(body: bytes) -> str:
    """`: CODE: message` from a Registry API error body, or "" when it has none."""
    try:
        doc = json.loads(body)
        first = doc["errors"][0]
        code, text = str(first.get("code", "")), str(first.get("message", ""))
    except (ValueError, UnicodeDecodeError, KeyError, IndexError, TypeError, AttributeError):
        return ""
    return f": {code}: {text}"[:300]


async def discard(response: httpx.Response) -> bytes:
    """Read at most a small body (so the connection can be reused), then close. Never raises
    httpx errors: a body we only glance at is not worth failing for."""
    body = bytearray()
    try:
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > _ERROR_BODY_LIMIT:
                break
    except httpx.HTTPError:
        pass
    finally:
        await response.aclose()
    return bytes(body[:_ERROR_BODY_LIMIT])


def _origin(url: httpx.URL) -> Origin:
    return (url.scheme, url.host, url.port or _DEFAULT_PORTS.get(url.scheme, 0))


def int_header(response: httpx.Response, name: str) -> int | None:
    return ascii_int(response.headers.get(name))


def url_path(value: str) -> str:
    return quote(value, safe="/:@")


def pull_scope(repo: str) -> str:
    return f"repository:{repo}:pull"


def push_scope(repo: str) -> str:
    return f"repository:{repo}:pull,push"


def accept_header(accept: Sequence[str]) -> dict[str, str]:
    return {"Accept": ", ".join(accept)} if accept else {}
