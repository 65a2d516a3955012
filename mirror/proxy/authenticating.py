"""The composition root's part for access control: `auth` in the config, wired into the app.

`authentication(config, table)` builds what `create_app` adds: a request wrapper that
checks every distribution API request before it is dispatched, and, with
`auth.tokenservice`, the built-in token service on a listener of its own. This module
reads the configuration, as `proxy/app.py` does.

The check: the route table says which kind of route a path is (paths that are not API
routes, `/metrics` and the health probes, pass unchecked; so do unknown `/v2/...` paths,
which are 404 whoever asks), `mirror.auth.authorize` what the request needs and whether
the controller grants it. A refusal is answered here: 401 `UNAUTHORIZED` with the OCI
envelope, `detail` listing the accesses that were missing, and `WWW-Authenticate`. A grant
is left in the request's state (`"grant"`), where notifications find their actor.

Names: the access policy judges stored repository names (`docker.io/library/alpine` for
`alpine` through the default upstream), through the routing table. A request with
containerd's `?ns=` is checked against the stored name whenever the namespace makes the
name mean another repository than it would mean without one, so no token or rule for one
repository opens another.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.datastructures import QueryParams
from starlette.types import ASGIApp, Receive, Scope, Send

from mirror.auth import (
    AccessController,
    AccessPolicy,
    Challenge,
    Grant,
    PolicyFile,
    PolicySource,
    RouteKind,
    authorize,
    create_access_controller,
    parse_policy,
)
from mirror.auth.tokenservice import TokenService, create_token_service
from mirror.auth.tokenservice.signing import CERT_FILE
from mirror.config import Config
from mirror.config.auth import AuthConfig, TokenAuthConfig, TokenServiceConfig
from mirror.config.errors import ConfigError
from mirror.errors import RegistryError
from mirror.proxy import requestbody, routes
from mirror.proxy.asgi import API_VERSION
from mirror.proxy.debuglistener import DebugListener
from mirror.proxy.errors import error_response
from mirror.proxy.operability import _bind_of
from mirror.upstream.routing import RoutingTable

log = logging.getLogger("mirror.auth")

Hook = Callable[[], Awaitable[None]]
Wrapper = Callable[[ASGIApp], ASGIApp]
GRANT_KEY = "grant"  # where notifications (`proxy/notifying.py`) read the actor
_KINDS: dict[str, RouteKind] = {"base": "base", "catalog": "catalog"}
_NAME_CACHE = 4096
_ROUTE_CACHE = 4096
# A grant is remembered this long for the same credentials and request (method, route
# kind, names): a pull's many requests pay for one check. So a user removed from the
# htpasswd file, or a policy edit, takes effect within this time, not at once.
DECISION_TTL = 1.0
DECISION_CACHE = 4096


@dataclass
class Authentication:
    """What `create_app` adds for `auth`: nothing without it."""

    wrappers: list[Wrapper] = field(default_factory=list)
    startup: list[Hook] = field(default_factory=list)
    shutdown: list[Hook] = field(default_factory=list)
    controller: AccessController | None = None
    token_service: TokenService | None = None


def authentication(
    config: Config, table: RoutingTable | None, *, headers: dict[str, str] | None = None
) -> Authentication:
    """The access control `config.auth` describes (ConfigError for one that cannot work:
    a missing file, a bad policy or key). `table` is the mirror's routing table (None
    for a standalone registry); `headers` are the responses' configured headers."""
    auth = config.auth
    if auth is None:
        return Authentication()
    name_key = stored_names(table)
    try:
        policy = _policy(auth, config, table)
        service = _token_service(auth, config, policy, name_key)
        controller = _controller(auth, policy, name_key, _service_certificate(auth, config))
    except (ValueError, OSError) as exc:
        raise ConfigError(f"auth: {exc}") from None
    checked = Authentication(controller=controller, token_service=service)
    checked.wrappers.append(
        lambda app: Authenticating(app, controller, table, headers=headers or {})
    )
    if service is not None:
        assert auth.tokenservice is not None
        host, port = _bind_of(auth.tokenservice.addr)
        listener = DebugListener(service, host, port, what="token service")
        checked.startup.append(listener.start)
        checked.shutdown.append(listener.aclose)
    log.info("access control: %s%s", auth.controller, _policy_words(auth))
    return checked


def check_auth(config: Config) -> None:
    """What `authentication` would refuse, without starting anything or creating a key
    (for `mirror serve` before its workers start, and `check-config`)."""
    auth = config.auth
    if auth is None:
        return
    try:
        _policy(auth, config, None)
        if auth.controller == "htpasswd":
            assert auth.htpasswd is not None
            _must_exist(auth.htpasswd.path, "auth.htpasswd.path")
        service = auth.tokenservice
        if service is not None:
            if service.htpasswd:
                _must_exist(service.htpasswd, "auth.tokenservice.htpasswd")
            if service.key:
                _must_exist(service.key, "auth.tokenservice.key")
                _must_exist(service.certificate, "auth.tokenservice.certificate")
        token = auth.token
        if token is not None:
            for key, path in (("rootcertbundle", token.rootcertbundle), ("jwks", token.jwks)):
                if path:
                    _must_exist(path, f"auth.token.{key}")
            if service is None and not token.rootcertbundle and not token.jwks:
                raise ValueError("token auth requires rootcertbundle or jwks (trusted keys)")
    except (ValueError, OSError) as exc:
        raise ConfigError(f"auth: {exc}") from None


def _must_exist(path: str, key: str) -> None:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{key}: file not found: {path}")


def stored_names(table: RoutingTable | None) -> Callable[[str], str] | None:
    """The name the policy judges for a name as clients write it (no namespace)."""
    if table is None:
        return None

    @functools.lru_cache(maxsize=_NAME_CACHE)
    def stored(name: str) -> str:
        try:
            return table.route(name).local_name
        except RegistryError:
            return name  # invalid: judged as written, refused by its handler anyway

    return stored


def _policy(auth: AuthConfig, config: Config, table: RoutingTable | None) -> PolicySource | None:
    if auth.policy is not None:
        return parse_policy(auth.policy)
    if auth.policyfile:
        return PolicyFile(auth.policyfile)
    if auth.anonymouspull:
        upstreams = config.proxy.upstreams if config.proxy is not None else ()
        if table is not None:
            prefixes = [route.prefix for route in table.upstreams]
        else:
            prefixes = [upstream.name.lower().replace(":", "-") for upstream in upstreams]
        return AccessPolicy.mirror_default(prefixes)
    return None


def _policy_words(auth: AuthConfig) -> str:
    if auth.policy is not None:
        return " with the configured policy"
    if auth.policyfile:
        return f" with the policy in {auth.policyfile}"
    if auth.anonymouspull:
        return " (anonymous pull of upstream content)"
    return ""


def _controller(
    auth: AuthConfig,
    policy: PolicySource | None,
    name_key: Callable[[str], str] | None,
    service_certificate: str | None,
) -> AccessController:
    if auth.htpasswd is not None:
        return create_access_controller(
            "htpasswd",
            realm=auth.htpasswd.realm,
            path=auth.htpasswd.path,
            policy=policy,
            name_key=name_key,
        )
    if auth.token is not None:
        return create_access_controller("token", **_token_options(auth.token, service_certificate))
    assert auth.silly is not None
    return create_access_controller("silly", realm=auth.silly.realm, service=auth.silly.service)


def _service_certificate(auth: AuthConfig, config: Config) -> str | None:
    """The built-in token service's certificate file, if there is a service."""
    service = auth.tokenservice
    if service is None:
        return None
    return service.certificate or str(Path(key_directory(service, config)) / CERT_FILE)


def _token_options(token: TokenAuthConfig, service_certificate: str | None) -> dict[str, Any]:
    bundle = token.rootcertbundle
    if service_certificate is not None and not bundle and not token.jwks:
        # Trust the built-in service's own certificate (made or loaded before this).
        bundle = service_certificate
    return {
        "realm": token.realm,
        "service": token.service,
        "issuer": token.issuer,
        "rootcertbundle": bundle or None,
        "jwks": token.jwks or None,
        "autoredirect": token.autoredirect,
        "autoredirectpath": token.autoredirectpath or None,
        "signingalgorithms": list(token.signingalgorithms) or None,
    }


def _token_service(
    auth: AuthConfig,
    config: Config,
    policy: PolicySource | None,
    name_key: Callable[[str], str] | None,
) -> TokenService | None:
    service = auth.tokenservice
    if service is None:
        return None
    assert auth.token is not None  # the configuration checked it
    path = urlsplit(auth.token.realm).path or "/token"
    return create_token_service(
        issuer=auth.token.issuer,
        service=auth.token.service,
        htpasswd=service.htpasswd or None,
        key_path=service.key or None,
        certificate_path=service.certificate or None,
        key_directory=None if service.key else key_directory(service, config),
        policy=policy,
        lifetime=int(service.expiration),
        refresh_lifetime=service.refreshexpiration,
        path=path,
        name_key=name_key,
    )


def key_directory(service: TokenServiceConfig, config: Config) -> str:
    """Where the token service's generated key is kept."""
    return service.keydirectory or str(Path(config.cache.directory) / "tokenservice")


class Authenticating:
    """The request wrapper: checks a distribution API request before it is dispatched."""

    def __init__(
        self,
        app: ASGIApp,
        controller: AccessController,
        table: RoutingTable | None,
        *,
        headers: dict[str, str],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.controller = controller
        self.table = table
        self.headers = {API_VERSION[0]: API_VERSION[1], **headers}
        self.clock = clock
        self._granted: OrderedDict[bytes, tuple[float, Grant]] = OrderedDict()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = _match(scope["path"]) if scope["type"] == "http" else None
        if found is None:
            await self.app(scope, receive, send)
            return
        route, params = found
        method: str = scope["method"]
        kind = _KINDS.get(route.name, "repository")
        name = mount_from = None
        if kind == "repository":
            name = params["name"]
            raw_query = scope.get("query_string")
            if raw_query:
                query = QueryParams(raw_query)  # Starlette's reading, as the handlers'
                name = self._checked_name(name, query.get("ns"))
                if route.name == "upload_start":
                    mount_from = query.get("from") or None
        key = _decision_key(scope["headers"], (method, kind, name, mount_from))
        now = self.clock()
        remembered = self._granted.get(key)
        if remembered is not None and remembered[0] > now:
            grant = remembered[1]
        else:
            try:
                grant = await authorize(
                    self.controller,
                    scope["headers"],
                    method,
                    kind,
                    name=name,
                    mount_from=mount_from,
                )
            except Challenge as challenge:
                log.info("%s %s refused: %s", method, scope["path"][:200], challenge.reason[:200])
                await self._refuse(challenge, scope, receive, send)
                return
            self._remember(key, now, grant)
        state = scope.setdefault("state", {})
        state[GRANT_KEY] = grant
        await self.app(scope, receive, send)

    def _remember(self, key: bytes, now: float, grant: Grant) -> None:
        self._granted[key] = (now + DECISION_TTL, grant)
        self._granted.move_to_end(key)
        if len(self._granted) > DECISION_CACHE:
            self._granted.popitem(last=False)

    def _checked_name(self, name: str, namespace: str | None) -> str:
        """`name`, or the stored name when `?ns=` makes it another repository."""
        if not namespace or self.table is None:
            return name
        try:
            with_namespace = self.table.route(name, namespace).local_name
        except RegistryError:
            return name  # refused by the handler (NAME_UNKNOWN, NAME_INVALID) once allowed
        try:
            plain = self.table.route(name).local_name
        except RegistryError:
            plain = None
        return name if plain == with_namespace else with_namespace

    async def _refuse(
        self, challenge: Challenge, scope: Scope, receive: Receive, send: Send
    ) -> None:
        receive, send = requestbody.watch(scope, receive, send)
        response = error_response(challenge, head=scope["method"] == "HEAD")
        response.headers.update(self.headers)
        response.headers.update(challenge.headers)
        await response(scope, receive, send)


def _decision_key(
    headers: list[tuple[bytes, bytes]], request: tuple[str, str, str | None, str | None]
) -> bytes:
    """A digest of the request's credentials (never kept as such) and what it asks for."""
    digest = hashlib.sha256(repr(request).encode())
    for name, value in headers:
        if name.lower() == b"authorization":
            digest.update(len(value).to_bytes(4, "big"))
            digest.update(value)
    return digest.digest()


@functools.lru_cache(maxsize=_ROUTE_CACHE)
def _match(path: str) -> tuple[routes.Route, dict[str, str]] | None:
    """The route table's match, remembered (its patterns cost microseconds a request)."""
    return routes.match(path)
