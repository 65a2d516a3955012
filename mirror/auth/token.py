"""registry:2's `token` access controller: Bearer tokens of the Docker token spec.

Options as in registry:2: `realm`, `service`, `issuer`, `rootcertbundle` and/or `jwks`
(at least one trusted key), `autoredirect` (the realm becomes
`<X-Forwarded-Proto or https>://<Host><autoredirectpath>`, default path `/auth/token`),
`signingalgorithms` (default: every asymmetric algorithm; HMAC algorithms and `none` are
refused, see `mirror.auth.keys`). The challenge is
`Bearer realm="..",service="..",scope=".."` with `error="invalid_token"` for a token that
does not verify and `error="insufficient_scope"` for one that lacks an access.

A verified token is remembered (bounded LRU, by its SHA-256) until it expires, so a
pull's many requests with one token pay for one signature check.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

from mirror.auth.access import Access, AuthRequest, Grant, scope_param
from mirror.auth.challenge import (
    AUTHENTICATION_REQUIRED,
    INSUFFICIENT_ACCESS,
    INVALID_TOKEN,
    Challenge,
    auth_params,
)
from mirror.auth.credentials import MalformedCredentials, parse_bearer
from mirror.auth.jwtverify import LEEWAY, InvalidToken, TokenVerifier, VerifiedToken
from mirror.auth.keys import (
    ASYMMETRIC_ALGORITHMS,
    HMAC_ALGORITHMS,
    load_certificates,
    load_jwks,
    trusted_keys,
)

log = logging.getLogger("mirror.auth")

DEFAULT_AUTOREDIRECT_PATH = "/auth/token"
DEFAULT_CACHE_SIZE = 4096


class TokenConfigError(ValueError):
    """The token controller's options cannot work; the message names the option."""


def signing_algorithms(names: Sequence[str] | None) -> frozenset[str]:
    """The accepted `alg` values; TokenConfigError for HMAC, `none` or unknown names."""
    if not names:
        return ASYMMETRIC_ALGORITHMS
    for name in names:
        if name in HMAC_ALGORITHMS:
            raise TokenConfigError(
                f"signingalgorithms: {name} is not supported: tokens are checked with "
                "public keys only (an HMAC secret would have to be shared with every issuer)"
            )
        if name not in ASYMMETRIC_ALGORITHMS:
            raise TokenConfigError(
                f"signingalgorithms: unsupported signing algorithm {name!r} "
                f"(one of {', '.join(sorted(ASYMMETRIC_ALGORITHMS))})"
            )
    return frozenset(names)


class TokenAccessController:
    def __init__(
        self,
        *,
        realm: str,
        service: str,
        issuer: str,
        rootcertbundle: str | None = None,
        jwks: str | None = None,
        autoredirect: bool = False,
        autoredirectpath: str | None = None,
        signingalgorithms: Sequence[str] | None = None,
        cache_size: int = DEFAULT_CACHE_SIZE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        for option, value in (("realm", realm), ("service", service), ("issuer", issuer)):
            if not isinstance(value, str) or not value:
                raise TokenConfigError(f"token auth requires a non-empty string {option!r}")
        roots = load_certificates(rootcertbundle) if rootcertbundle else []
        keys = load_jwks(jwks) if jwks else {}
        if not roots and not keys:
            raise TokenConfigError(
                "token auth requires at least one token signing key (rootcertbundle or jwks)"
            )
        self.realm = realm
        self.service = service
        self.autoredirect_path = (
            (autoredirectpath or DEFAULT_AUTOREDIRECT_PATH) if autoredirect else None
        )
        self.verifier = TokenVerifier(
            issuer=issuer,
            service=service,
            roots=roots,
            trusted_keys=trusted_keys(roots, keys),
            algorithms=signing_algorithms(signingalgorithms),
            clock=clock,
        )
        self.clock = clock
        self._cache_size = cache_size
        self._verified: OrderedDict[bytes, VerifiedToken] = OrderedDict()
        self.verifications = 0

    async def authorized(self, request: AuthRequest, accesses: Sequence[Access]) -> Grant:
        header = request.authorization
        if header is None or not _is_bearer(header):
            raise self._challenge(
                request,
                accesses,
                AUTHENTICATION_REQUIRED,
                error=None,
                missing=accesses,
                reason="no token",
            )
        try:
            token = self._token(parse_bearer(header))
        except (MalformedCredentials, InvalidToken) as exc:
            log.info("token auth: %s", exc)
            raise self._challenge(
                request,
                accesses,
                INVALID_TOKEN,
                error="invalid_token",
                missing=accesses,
                reason=str(exc),
            ) from None
        missing = [a for a in accesses if not token.allows(a.type, a.name, a.action)]
        if missing:
            raise self._challenge(
                request,
                accesses,
                INSUFFICIENT_ACCESS,
                error="insufficient_scope",
                missing=missing,
                reason=f"token of {token.subject!r} lacks {scope_param(missing)}",
            )
        return Grant(token.subject or None, accesses=tuple(accesses))

    def _token(self, raw: str) -> VerifiedToken:
        key = hashlib.sha256(raw.encode()).digest()
        now = self.clock()
        cached = self._verified.get(key)
        if cached is not None:
            if now <= cached.expires + LEEWAY:
                self._verified.move_to_end(key)
                return cached
            del self._verified[key]
        self.verifications += 1
        token = self.verifier.verify(raw)
        self._verified[key] = token
        if len(self._verified) > self._cache_size:
            self._verified.popitem(last=False)
        return token

    def realm_for(self, request: AuthRequest) -> str:
        """The realm to send: the configured one, or the auto-redirect URL for this host."""
        if self.autoredirect_path is None:
            return self.realm
        scheme = request.forwarded_proto or "https"
        return f"{scheme}://{request.host}{self.autoredirect_path}"

    def _challenge(
        self,
        request: AuthRequest,
        accesses: Sequence[Access],
        message: str,
        *,
        error: str | None,
        missing: Sequence[Access],
        reason: str,
    ) -> Challenge:
        params = [
            ("realm", self.realm_for(request)),
            ("service", self.service),
            ("scope", scope_param(accesses)),
            ("error", error or ""),
        ]
        return Challenge(
            message, www_authenticate=auth_params("Bearer", params), missing=missing, reason=reason
        )


def _is_bearer(header: str) -> bool:
    # As registry:2: only "Bearer <something>" is a token to check; anything else (another
    # scheme, a bare "Bearer") is a request without a token.
    scheme, _, rest = header.strip().partition(" ")
    return scheme.lower() == "bearer" and bool(rest.strip())
