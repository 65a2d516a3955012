"""Registry authentication: the Docker token flow and HTTP Basic.

`RegistryAuth` is a helper the client consults around each request to the registry's own
origin: `authorization(scope)` gives the header to send up front (a cached, still-fresh
token for that scope, or Basic credentials once the registry has asked for them), and
`answer(...)` turns a 401's challenges into the header to retry with, fetching a token from
the challenge's realm when needed. The client, not this module, decides which hosts may see
the header: never a redirect target on another origin.

With an identity token (an OAuth2 refresh token, as `docker login` keeps for some
registries) a token is asked for with the token spec's OAuth2 form instead: a POST to
the realm with `grant_type=refresh_token`, the refresh token, service, scope and
`client_id`; a refresh token in the reply replaces the one held.

Credentials go to the token realm even when it lives on another host, because the realm is
where the registry told us to authenticate; the realm comes only from a registry we were
configured to talk to.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

from mirror.registryhttp.errors import UpstreamAuthError, UpstreamError, UpstreamRateLimited
from mirror.registryhttp.headers import valid_retry_after

DEFAULT_TOKEN_LIFETIME = 60.0
# Refresh a token this long (at most) before it expires, so it does not lapse in flight.
_EXPIRY_MARGIN = 10.0
_TOKEN_BODY_LIMIT = 1024 * 1024
_MAX_CACHED_TOKENS = 4096
# A token goes into an HTTP header: visible ASCII only, no spaces or control characters.
_TOKEN_CHARS = re.compile(r"^[\x21-\x7e]+$")
CLIENT_ID = "mirror"  # the OAuth2 form's client_id (required; names the client)


@dataclass(frozen=True, slots=True)
class Challenge:
    """One challenge of a `WWW-Authenticate` header; scheme and parameter names lower-case."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)


def parse_challenges(values: Iterable[str]) -> list[Challenge]:
    """Parse every challenge in the given `WWW-Authenticate` header values.

    Tolerant by design: quoted strings may hold commas and escaped quotes, one header may
    carry several challenges, and anything unparseable is skipped rather than raised.
    """
    out: list[Challenge] = []
    for value in values:
        _parse_header(value, out)
    return out


def _parse_header(text: str, out: list[Challenge]) -> None:
    i, n = 0, len(text)
    current: Challenge | None = None
    while i < n:
        while i < n and text[i] in " \t,":
            i += 1
        start = i
        while i < n and text[i] not in ' \t,="':
            i += 1
        word = text[start:i]
        if not word:
            if i < n and text[i] == '"':
                _, i = _quoted(text, i + 1)
            else:
                i += 1
            continue
        j = i
        while j < n and text[j] in " \t":
            j += 1
        if j < n and text[j] == "=":
            i = j + 1
            while i < n and text[i] in " \t":
                i += 1
            if i < n and text[i] == '"':
                value, i = _quoted(text, i + 1)
            else:
                start = i
                while i < n and text[i] not in " \t,":
                    i += 1
                value = text[start:i]
            if current is not None:
                current.params.setdefault(word.lower(), value)
        else:
            current = Challenge(word.lower())
            out.append(current)
            i = j


def _quoted(text: str, i: int) -> tuple[str, int]:
    """Read a quoted string whose opening quote is just before `i`; unterminated runs to the end."""
    chars: list[str] = []
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n:
            chars.append(text[i + 1])
            i += 2
        elif c == '"':
            return "".join(chars), i + 1
        else:
            chars.append(c)
            i += 1
    return "".join(chars), n


def basic_credentials(username: str, password: str) -> str:
    """The `Authorization` value for HTTP Basic."""
    raw = f"{username}:{password}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


@dataclass(frozen=True, slots=True)
class _Token:
    value: str
    refresh_at: float  # on the monotonic clock


@dataclass(slots=True)
class _Flight:
    """The token fetches for one scope that overlap in time."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0
    failure: UpstreamAuthError | UpstreamRateLimited | None = None


class _Flights:
    """One `_Flight` per scope, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._flights: dict[str, _Flight] = {}

    def __len__(self) -> int:
        return len(self._flights)

    @asynccontextmanager
    async def join(self, key: str) -> AsyncIterator[_Flight]:
        flight = self._flights.setdefault(key, _Flight())
        flight.users += 1
        try:
            async with flight.lock:
                yield flight
        finally:
            flight.users -= 1
            if not flight.users:
                del self._flights[key]


class RegistryAuth:
    """Token and Basic auth state for one registry, shared by all its requests.

    `scope` arguments are the client's own cache keys (e.g. ``repository:library/alpine:pull``,
    or ``""`` for the base endpoint); tokens are cached per key until shortly before expiry.
    Concurrent requests that need a token for the same key share one token fetch (and its
    failure). With `secure` (the registry is reached over https) credentials are never sent
    to a plain-http realm.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        username: str | None = None,
        password: str | None = None,
        name: str = "",
        secure: bool = False,
        identity_token: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._http = http
        self._secure = secure
        self._username = username
        self._refresh = identity_token or None
        self._basic = (
            basic_credentials(username, password or "") if username and not self._refresh else None
        )
        self._name = name
        self._clock = clock
        self._wall_clock = wall_clock
        self._tokens: dict[str, _Token] = {}
        self._flights = _Flights()
        self._basic_wanted = False

    def authorization(self, scope: str) -> str | None:
        """The `Authorization` value to send up front for `scope`, or None to go without.

        Never raises and never does I/O.
        """
        token = self._tokens.get(scope)
        if token is not None and self._clock() < token.refresh_at:
            return f"Bearer {token.value}"
        if self._basic_wanted:
            return self._basic
        return None

    async def answer(
        self, challenges: Sequence[Challenge], scope: str, rejected: str | None
    ) -> str:
        """The `Authorization` value to retry a request the registry refused with 401.

        `rejected` is what the refused request carried (None if nothing). A Bearer challenge
        fetches a fresh token from its realm (unless a concurrent request already replaced
        the rejected one); a Basic challenge yields the configured credentials. Raises
        UpstreamAuthError when no challenge can be met or the token endpoint fails, and
        UpstreamRateLimited when the token endpoint answers 429.
        """
        for challenge in challenges:
            if challenge.scheme == "bearer" and challenge.params.get("realm"):
                return "Bearer " + await self._token(scope, challenge, rejected)
        if any(c.scheme == "basic" for c in challenges):
            if self._basic is None:
                raise UpstreamAuthError(f"{self._name}: registry requires credentials", status=401)
            if rejected == self._basic:
                raise UpstreamAuthError(
                    f"{self._name}: registry rejected the credentials", status=401
                )
            self._basic_wanted = True
            return self._basic
        raise UpstreamAuthError(
            f"{self._name}: 401 without a usable Bearer or Basic challenge", status=401
        )

    async def _token(self, scope: str, challenge: Challenge, rejected: str | None) -> str:
        async with self._flights.join(scope) as flight:
            cached = self._tokens.get(scope)
            if (
                cached is not None
                and self._clock() < cached.refresh_at
                and f"Bearer {cached.value}" != rejected
            ):
                return cached.value
            # Requests queued behind a failed fetch share its failure instead of each
            # waiting out the same timeout in turn.
            if flight.failure is not None:
                raise _again(flight.failure)
            self._tokens.pop(scope, None)
            try:
                token = await self._fetch(challenge, scope)
            except (UpstreamAuthError, UpstreamRateLimited) as exc:
                flight.failure = exc
                raise
            self._remember(scope, token)
            return token.value

    def _remember(self, scope: str, token: _Token) -> None:
        if len(self._tokens) >= _MAX_CACHED_TOKENS:
            now = self._clock()
            for key in [k for k, t in self._tokens.items() if t.refresh_at <= now]:
                del self._tokens[key]
            while len(self._tokens) >= _MAX_CACHED_TOKENS:
                del self._tokens[next(iter(self._tokens))]
        self._tokens[scope] = token

    async def _fetch(self, challenge: Challenge, scope: str) -> _Token:
        try:
            realm = httpx.URL(challenge.params["realm"])
        except (httpx.InvalidURL, ValueError):
            raise UpstreamAuthError(f"{self._name}: token realm is not a URL") from None
        if realm.scheme not in ("http", "https") or not realm.host:
            raise UpstreamAuthError(f"{self._name}: token realm is not an http(s) URL")
        if (self._basic or self._refresh) and self._secure and realm.scheme != "https":
            raise UpstreamAuthError(
                f"{self._name}: refusing to send credentials to a plain-http token realm"
            )
        service = challenge.params.get("service")
        # The challenge names the scope the registry wants; our own key is only a fallback.
        scopes = (challenge.params.get("scope") or scope).split()
        where = f"{self._name}: token endpoint {realm.host}"
        started = self._wall_clock()
        try:
            if self._refresh is not None:
                request = self._oauth_request(realm, service, scopes, self._refresh)
            else:
                params = [("service", service)] if service else []
                params += [("scope", item) for item in scopes]
                if self._username:
                    params.append(("account", self._username))
                headers = {"Authorization": self._basic} if self._basic else {}
                url = realm.copy_merge_params(tuple(params))
                request = self._http.build_request("GET", url, headers=headers)
            response = await self._http.send(request, stream=True)
            try:
                body = await _read_capped(response, _TOKEN_BODY_LIMIT)
            finally:
                await response.aclose()
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            # An unreachable token service fails every pull: the upstream is unhealthy.
            raise UpstreamAuthError(
                f"{where}: {type(exc).__name__}: {exc}",
                unhealthy=isinstance(exc, httpx.TransportError),
            ) from exc
        if response.status_code == 429:
            raise UpstreamRateLimited(
                f"{where} answered 429",
                retry_after=valid_retry_after(response.headers.get("retry-after")),
            )
        if response.status_code != 200:
            raise UpstreamAuthError(
                f"{where} answered {response.status_code}", status=response.status_code
            )
        if body is None:
            raise UpstreamAuthError(f"{where}: reply larger than {_TOKEN_BODY_LIMIT} bytes")
        return self._parse_reply(body, where, started)

    def _oauth_request(
        self, realm: httpx.URL, service: str | None, scopes: list[str], refresh: str
    ) -> httpx.Request:
        form = {"grant_type": "refresh_token", "refresh_token": refresh, "client_id": CLIENT_ID}
        if service:
            form["service"] = service
        if scopes:
            form["scope"] = " ".join(scopes)
        return self._http.build_request("POST", realm, data=form)

    def _parse_reply(self, body: bytes, where: str, started: float) -> _Token:
        try:
            doc = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise UpstreamAuthError(f"{where}: reply is not JSON") from None
        if not isinstance(doc, dict):
            raise UpstreamAuthError(f"{where}: reply is not a JSON object")
        value = doc.get("token") or doc.get("access_token")
        if not isinstance(value, str) or not _TOKEN_CHARS.match(value):
            raise UpstreamAuthError(f"{where}: reply has no usable token")
        renewed = doc.get("refresh_token")
        if self._refresh is not None and isinstance(renewed, str) and renewed:
            self._refresh = renewed
        expires_in = doc.get("expires_in")
        lifetime = DEFAULT_TOKEN_LIFETIME
        if (
            isinstance(expires_in, int | float)
            and not isinstance(expires_in, bool)
            and expires_in > 0
        ):
            lifetime = float(expires_in)
        issued = _timestamp(doc.get("issued_at"))
        if issued is not None:
            # Only an issue time in our past shortens the lifetime; a future one is clock skew.
            age = started - issued
            if 0 < age < lifetime:
                lifetime -= age
        margin = min(_EXPIRY_MARGIN, lifetime / 10)
        return _Token(value, self._clock() + lifetime - margin)


def _again(error: UpstreamAuthError | UpstreamRateLimited) -> UpstreamError:
    """A fresh copy of a shared failure (one exception object must not be raised twice)."""
    if isinstance(error, UpstreamRateLimited):
        return UpstreamRateLimited(error.message, retry_after=error.retry_after)
    return UpstreamAuthError(error.message, status=error.status, unhealthy=error.unhealthy)


def _timestamp(value: object) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


async def _read_capped(response: httpx.Response, limit: int) -> bytes | None:
    """The decoded body, or None when it exceeds `limit` bytes."""
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)
