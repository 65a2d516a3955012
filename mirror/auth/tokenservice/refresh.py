"""Refresh tokens (`offline_token=true`, OAuth2 `access_type=offline`): opaque to clients.

A refresh token names one user and one service (the audience), and is signed with an
HMAC key derived from the service's signing key, so only this service can check it and
no registry can mistake it for an access token (registries verify with public keys
only). It also carries a keyed digest of the user's htpasswd entry: changing the
password, or removing the user, ends every refresh token issued before. It expires
after `lifetime` (the spec lets refresh tokens live forever; bounded here by design).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable

import jwt
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from mirror.auth.tokenservice.signing import SigningKey

DEFAULT_LIFETIME = 30 * 24 * 3600.0
_TYPE = "mirror-refresh+jwt"
_ALGORITHM = "HS256"


class RefreshTokenInvalid(ValueError):
    """The refresh token is forged, expired, for another service or a changed user."""


class RefreshTokens:
    def __init__(
        self,
        key: SigningKey,
        *,
        issuer: str,
        lifetime: float = DEFAULT_LIFETIME,
        clock: Callable[[], float] = time.time,
    ) -> None:
        der = key.private_key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self._secret = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"mirror refresh tokens"
        ).derive(der)
        self.issuer = issuer
        self.lifetime = lifetime
        self.clock = clock

    def fingerprint(self, entry: bytes) -> str:
        """A keyed digest of a user's credential entry (their bcrypt hash)."""
        return hmac.new(self._secret, b"entry\0" + entry, hashlib.sha256).hexdigest()[:32]

    def mint(self, user: str, service: str, entry: bytes) -> str:
        now = int(self.clock())
        claims = {
            "iss": self.issuer,
            "sub": user,
            "aud": service,
            "iat": now,
            "exp": now + int(self.lifetime),
            "jti": secrets.token_urlsafe(16),
            "fp": self.fingerprint(entry),
        }
        return jwt.encode(claims, self._secret, algorithm=_ALGORITHM, headers={"typ": _TYPE})

    def check(self, token: str, service: str, current_entry: Callable[[str], bytes | None]) -> str:
        """The user a refresh token is for; RefreshTokenInvalid otherwise.

        `current_entry(user)` gives the user's credential entry now (None: gone).
        """
        try:
            if jwt.get_unverified_header(token).get("typ") != _TYPE:
                raise RefreshTokenInvalid("not a refresh token")
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[_ALGORITHM],
                audience=service,
                issuer=self.issuer,
                options={
                    "require": ["exp", "sub", "aud", "fp"],
                    "verify_exp": False,  # checked below, against our clock
                    "verify_iat": False,
                },
            )
        except jwt.PyJWTError as exc:
            raise RefreshTokenInvalid(f"refresh token rejected: {exc}") from None
        expires = claims.get("exp")
        if not isinstance(expires, int) or self.clock() > expires:
            raise RefreshTokenInvalid("refresh token expired")
        user, fingerprint = claims.get("sub"), claims.get("fp")
        if not isinstance(user, str) or not user or not isinstance(fingerprint, str):
            raise RefreshTokenInvalid("refresh token without a user")
        entry = current_entry(user)
        if entry is None or not hmac.compare_digest(self.fingerprint(entry), fingerprint):
            raise RefreshTokenInvalid(f"user {user!r} is gone or changed their password")
        return user
