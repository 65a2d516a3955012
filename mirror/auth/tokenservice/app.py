"""The token endpoint, an ASGI app on its own port: the `realm` registries point at.

- `GET <path>?service=&scope=&scope=&account=&offline_token=&client_id=` (token.md):
  Basic credentials checked against the htpasswd file, or none for anonymous; answers
  `{"token", "access_token", "expires_in", "issued_at"[, "refresh_token"]}`. Wrong or
  malformed credentials: 401 with `WWW-Authenticate: Basic realm=...`.
- `POST <path>`, form-encoded (oauth.md): `grant_type=password` (`username`,
  `password`) or `grant_type=refresh_token` (`refresh_token`), `service` (required),
  `scope` (space-separated), `access_type=offline`, `client_id`. Answers
  `{"access_token", "token", "scope", "expires_in", "issued_at"[, "refresh_token"]}`;
  errors are RFC 6749's `{"error", "error_description"}` with 400.

Scopes that are malformed or of an unknown type are ignored, never a 5xx; `service`
must be the service this issuer signs for (or be left out, on GET). Nothing here logs a
credential or a token.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from mirror.auth.access import AuthRequest
from mirror.auth.challenge import auth_params
from mirror.auth.credentials import MalformedCredentials, parse_basic
from mirror.auth.scope import parse_scopes
from mirror.auth.tokenservice.issuer import IssuedToken, TokenIssuer
from mirror.auth.tokenservice.refresh import RefreshTokenInvalid, RefreshTokens
from mirror.auth.users import HtpasswdUsers

log = logging.getLogger("mirror.auth")

MAX_FORM_BYTES = 64 * 1024
MAX_SCOPES = 64
_TRUE = frozenset({"true", "1", "yes"})
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class TokenRequestError(Exception):
    """A request the endpoint refuses; rendered as an OAuth2 error body."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description


class TokenService:
    """The ASGI app. `users` may be None: then every request is anonymous-only."""

    def __init__(
        self,
        issuer: TokenIssuer,
        users: HtpasswdUsers | None,
        *,
        realm: str = "mirror token service",
        path: str = "/token",
        refresh: RefreshTokens | None = None,
    ) -> None:
        self.issuer = issuer
        self.users = users
        self.path = path
        self.refresh = refresh or RefreshTokens(issuer.key, issuer=issuer.issuer)
        self.www_authenticate = auth_params("Basic", [("realm", realm)])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        response: Response
        if request.url.path != self.path:
            response = _error(TokenRequestError(404, "not_found", "no such endpoint"))
        elif request.method not in ("GET", "POST"):
            response = _error(TokenRequestError(405, "invalid_request", "use GET or POST"))
            response.headers["Allow"] = "GET, POST"
        else:
            try:
                if request.method == "GET":
                    response = await self._get(request)
                else:
                    response = await self._post(request)
            except TokenRequestError as exc:
                response = _error(exc)
                if exc.status == 401:
                    response.headers["WWW-Authenticate"] = self.www_authenticate
        await response(scope, receive, send)

    async def _get(self, request: Request) -> Response:
        query = request.query_params
        self._check_service(query.get("service"), required=False)
        # Repeated Authorization headers are joined, so that no scheme accepts them.
        header = AuthRequest.from_asgi_headers(request.scope["headers"]).authorization
        user = await self._basic_user(header)
        account = query.get("account")
        if account and user is not None and account != user:
            raise TokenRequestError(
                400, "invalid_request", "account does not match the credentials"
            )
        issued = self._issue(user, query.getlist("scope"))
        body: dict[str, Any] = {
            "token": issued.token,
            "access_token": issued.token,
            "expires_in": issued.expires_in,
            "issued_at": issued.issued_at_text,
        }
        if user is not None and query.get("offline_token", "").lower() in _TRUE:
            body["refresh_token"] = self._mint_refresh(user)
        return JSONResponse(body, headers=_NO_STORE)

    async def _post(self, request: Request) -> Response:
        form = await _form(request)
        self._check_service(form.get("service"), required=True)
        grant_type = form.get("grant_type", "")
        refresh_token: str | None = None
        if grant_type == "password":
            user = await self._password_user(form.get("username", ""), form.get("password", ""))
            if form.get("access_type") == "offline":
                refresh_token = self._mint_refresh(user)
        elif grant_type == "refresh_token":
            refresh_token = form.get("refresh_token", "")
            user = self._refresh_user(refresh_token)
        else:
            raise TokenRequestError(
                400, "unsupported_grant_type", "grant_type must be password or refresh_token"
            )
        issued = self._issue(user, [form.get("scope", "")])
        body: dict[str, Any] = {
            "access_token": issued.token,
            "token": issued.token,
            "scope": issued.scope,
            "expires_in": issued.expires_in,
            "issued_at": issued.issued_at_text,
        }
        if refresh_token is not None:
            body["refresh_token"] = refresh_token
        return JSONResponse(body, headers=_NO_STORE)

    def _check_service(self, service: str | None, *, required: bool) -> None:
        if service is None or service == "":
            if required:
                raise TokenRequestError(400, "invalid_request", "service is required")
            return
        if service != self.issuer.service:
            raise TokenRequestError(400, "invalid_request", "unknown service")

    async def _basic_user(self, header: str | None) -> str | None:
        if header is None:
            return None
        try:
            credentials = parse_basic(header)
        except MalformedCredentials as exc:
            raise TokenRequestError(401, "invalid_client", str(exc)) from None
        return await self._password_user(credentials.username, credentials.password, status=401)

    async def _password_user(self, user: str, password: str, *, status: int = 400) -> str:
        if not user or self.users is None or not await self.users.verify(user, password):
            log.info("token service: user %r failed to authenticate", user)
            raise TokenRequestError(status, "invalid_grant", "wrong user name or password")
        return user

    def _refresh_user(self, token: str) -> str:
        if self.users is None:
            raise TokenRequestError(400, "invalid_grant", "refresh tokens are not available")
        try:
            return self.refresh.check(token, self.issuer.service, self.users.entry)
        except RefreshTokenInvalid as exc:
            log.info("token service: %s", exc)
            raise TokenRequestError(400, "invalid_grant", "invalid refresh token") from None

    def _mint_refresh(self, user: str) -> str:
        assert self.users is not None  # a user name only comes from the users
        entry = self.users.entry(user)
        if entry is None:  # removed since the check a moment ago
            raise TokenRequestError(400, "invalid_grant", "wrong user name or password")
        return self.refresh.mint(user, self.issuer.service, entry)

    def _issue(self, user: str | None, scope_values: Sequence[str]) -> IssuedToken:
        scopes = parse_scopes(list(scope_values))[:MAX_SCOPES]
        issued = self.issuer.issue(user, scopes)
        log.info(
            "token service: token for %s: %s",
            repr(user) if user else "anonymous",
            issued.scope or "no access",
        )
        return issued


async def _form(request: Request) -> Mapping[str, str]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise TokenRequestError(
            400, "invalid_request", "the body must be application/x-www-form-urlencoded"
        )
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise TokenRequestError(400, "invalid_request", "the form is too large")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise TokenRequestError(400, "invalid_request", "the form is not UTF-8") from None
    form: dict[str, str] = {}
    for key, value in pairs:
        if key in form:
            raise TokenRequestError(400, "invalid_request", f"{key[:32]!r} given twice")
        form[key] = value
    return form


async def _lifespan(receive: Receive, send: Send) -> None:
    # Nothing to start or stop: the key and the users are loaded when the app is built.
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _error(exc: TokenRequestError) -> JSONResponse:
    return JSONResponse(
        {"error": exc.error, "error_description": exc.description},
        status_code=exc.status,
        headers=dict(_NO_STORE),
    )
