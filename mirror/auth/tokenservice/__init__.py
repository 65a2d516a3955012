"""The built-in token service: issues Docker token-spec JWTs under the access policy.

`create_token_service(...)` builds the ASGI app from plain parameters; the composition
root serves it on its own port, and the registry's `auth.token.realm` points at it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from mirror.auth.controller import NameKey
from mirror.auth.policy import AccessPolicy, PolicySource
from mirror.auth.tokenservice.app import TokenService
from mirror.auth.tokenservice.issuer import DEFAULT_LIFETIME, TokenIssuer
from mirror.auth.tokenservice.refresh import DEFAULT_LIFETIME as DEFAULT_REFRESH_LIFETIME
from mirror.auth.tokenservice.refresh import RefreshTokens
from mirror.auth.tokenservice.signing import SigningKey, ensure_signing_key, load_signing_key
from mirror.auth.users import HtpasswdUsers

__all__ = [
    "SigningKey",
    "TokenIssuer",
    "TokenService",
    "create_token_service",
    "ensure_signing_key",
    "load_signing_key",
]


def create_token_service(
    *,
    issuer: str,
    service: str,
    htpasswd: str | os.PathLike[str] | None = None,
    users: HtpasswdUsers | None = None,
    key: SigningKey | None = None,
    key_path: str | os.PathLike[str] | None = None,
    certificate_path: str | os.PathLike[str] | None = None,
    key_directory: str | os.PathLike[str] | None = None,
    policy: PolicySource | None = None,
    lifetime: int = DEFAULT_LIFETIME,
    refresh_lifetime: float = DEFAULT_REFRESH_LIFETIME,
    realm: str = "mirror token service",
    path: str = "/token",
    name_key: NameKey | None = None,
    clock: Callable[[], float] = time.time,
) -> TokenService:
    """The token endpoint.

    The signing key is `key`, or the PEM at `key_path` (with `certificate_path` for an
    `x5c`), or the one kept in `key_directory` (generated on first start); exactly one
    of the three. Users come from the `htpasswd` file, or `users` (to share one
    verification cache with the htpasswd controller); without either, every token is
    anonymous. Without a `policy`, every valid user gets everything they ask for and
    anonymous nothing, registry:2's meaning.
    """
    sources = [key is not None, key_path is not None, key_directory is not None]
    if sum(sources) != 1:
        raise ValueError(
            "give the token signing key as exactly one of key, key_path, key_directory"
        )
    if key is None:
        if key_path is not None:
            key = load_signing_key(key_path, certificate_path)
        else:
            assert key_directory is not None
            key = ensure_signing_key(key_directory, subject=issuer)
    token_issuer = TokenIssuer(
        key=key,
        issuer=issuer,
        service=service,
        policy=policy or AccessPolicy.any_authenticated(),
        lifetime=lifetime,
        name_key=name_key,
        clock=clock,
    )
    if users is None and htpasswd is not None:
        users = HtpasswdUsers(htpasswd)
    refresh = RefreshTokens(key, issuer=issuer, lifetime=refresh_lifetime, clock=clock)
    return TokenService(token_issuer, users, realm=realm, path=path, refresh=refresh)
