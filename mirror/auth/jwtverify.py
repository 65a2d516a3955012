"""Checking a Docker token-spec JWT the way registry:2 does.

The signing key is found, in this order, from the `x5c` chain (verified up to a
`rootcertbundle` certificate), from a `jwk` header (only when it names a trusted key,
or carries its own `x5c` chain that verifies and holds that very key), or from `kid`
(a trusted key by that name). The key's own type must fit `alg`, and `alg` must be one
of the configured algorithms (never `none`, never HMAC). Then the claims: `iss` equal
to the issuer, `aud` (a string or a list) containing the service, `exp` and `nbf` with
60 seconds of leeway (a missing `exp` is an expired token, as in registry:2), and a
well-formed `access` list. Any failure is an `InvalidToken` whose reason is for the log.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt
from cryptography import x509
from cryptography.x509 import verification

from mirror.auth.access import ANY_ACTION
from mirror.auth.keys import (
    PublicKey,
    algorithm_fits,
    as_public_key,
    jwk_public_key,
    jwk_thumbprint,
)

LEEWAY = 60.0
_MAX_CHAIN = 8
_JWS = jwt.PyJWS()
# The certificate chain is checked for signatures, validity and CA constraints, not for
# the web PKI's extension rules: token signing certificates are often self-signed.
_PERMISSIVE = verification.ExtensionPolicy.permit_all()
_CA = verification.ExtensionPolicy.permit_all().require_present(
    x509.BasicConstraints, verification.Criticality.AGNOSTIC, None
)

Resource = tuple[str, str]


class InvalidToken(ValueError):
    """The token is malformed, untrusted, expired or not meant for us; `str()` says why."""


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    subject: str
    access: dict[Resource, frozenset[str]]
    expires: float

    def allows(self, kind: str, name: str, action: str) -> bool:
        actions = self.access.get((kind, name), frozenset())
        return ANY_ACTION in actions or action in actions


class TokenVerifier:
    def __init__(
        self,
        *,
        issuer: str,
        service: str,
        roots: Collection[x509.Certificate],
        trusted_keys: dict[str, PublicKey],
        algorithms: Collection[str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.issuer = issuer
        self.service = service
        self.roots = list(roots)
        self.trusted_keys = dict(trusted_keys)
        self.algorithms = frozenset(algorithms)
        self.clock = clock
        self._store = verification.Store(self.roots) if self.roots else None

    def verify(self, token: str) -> VerifiedToken:
        """The token's subject and access; InvalidToken for any problem."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"malformed token: {exc}") from None
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm not in self.algorithms:
            raise InvalidToken(f"algorithm {str(algorithm)[:20]!r} is not accepted")
        if "crit" in header or "b64" in header:
            raise InvalidToken("critical or unencoded-payload headers are not supported")
        key = self._signing_key(header)
        if not algorithm_fits(algorithm, key):
            raise InvalidToken(f"algorithm {algorithm} does not fit the signing key")
        try:
            payload = _JWS.decode(token, key, algorithms=[algorithm])
            claims = json.loads(payload)
        except (jwt.PyJWTError, ValueError, RecursionError) as exc:
            raise InvalidToken(f"bad signature or payload: {exc}") from None
        if not isinstance(claims, dict):
            raise InvalidToken("the claims are not a JSON object")
        return self._check_claims(claims)

    def _signing_key(self, header: dict[str, Any]) -> PublicKey:
        if "x5c" in header:
            return self._chain_key(header["x5c"])
        if "jwk" in header:
            return self._jwk_key(header["jwk"])
        kid = header.get("kid")
        if isinstance(kid, str) and kid:
            key = self.trusted_keys.get(kid)
            if key is None:
                raise InvalidToken(f"token signed by untrusted key with ID {kid[:64]!r}")
            return key
        raise InvalidToken("the token names no signing key (x5c, jwk or kid)")

    def _jwk_key(self, member: object) -> PublicKey:
        if not isinstance(member, dict):
            raise InvalidToken("the jwk header is not an object")
        try:
            embedded = jwk_public_key(member, "jwk header")
        except ValueError as exc:
            raise InvalidToken(str(exc)) from None
        if "x5c" in member:
            leaf = self._chain_key(member["x5c"])
            if jwk_thumbprint(leaf) != jwk_thumbprint(embedded):
                raise InvalidToken("the jwk header's key is not its certificate's key")
            return leaf
        for name in (member.get("kid"), jwk_thumbprint(embedded)):
            trusted = self.trusted_keys.get(name) if isinstance(name, str) else None
            # The key we trust verifies, never the one the token brought along.
            if trusted is not None and jwk_thumbprint(trusted) == jwk_thumbprint(embedded):
                return trusted
        raise InvalidToken("untrusted jwk with no certificate chain")

    def _chain_key(self, chain: object) -> PublicKey:
        if not isinstance(chain, list) or not 0 < len(chain) <= _MAX_CHAIN:
            raise InvalidToken("x5c is not a list of 1 to 8 certificates")
        certificates = []
        for item in chain:
            if not isinstance(item, str):
                raise InvalidToken("x5c holds something other than a certificate")
            try:
                certificates.append(
                    x509.load_der_x509_certificate(base64.b64decode(item, validate=True))
                )
            except (binascii.Error, ValueError):
                raise InvalidToken("x5c holds an undecodable certificate") from None
        if self._store is None:
            raise InvalidToken("x5c chain, but no rootcertbundle to verify it against")
        now = datetime.fromtimestamp(self.clock(), UTC)
        verifier = (
            verification.PolicyBuilder()
            .store(self._store)
            .time(now)
            .extension_policies(ca_policy=_CA, ee_policy=_PERMISSIVE)
            .build_client_verifier()
        )
        try:
            verifier.verify(certificates[0], certificates[1:])
        except (verification.VerificationError, ValueError) as exc:
            raise InvalidToken(f"x5c chain does not verify: {exc}") from None
        try:
            return as_public_key(certificates[0].public_key(), "x5c leaf")
        except ValueError as exc:
            raise InvalidToken(str(exc)) from None

    def _check_claims(self, claims: dict[str, Any]) -> VerifiedToken:
        if claims.get("iss") != self.issuer:
            raise InvalidToken(f"token from untrusted issuer {str(claims.get('iss'))[:80]!r}")
        audience = claims.get("aud")
        audiences = [audience] if isinstance(audience, str) else audience
        if not isinstance(audiences, list) or self.service not in audiences:
            raise InvalidToken("token intended for another audience")
        expires = _number(claims, "exp")
        not_before = _number(claims, "nbf")
        now = self.clock()
        if now > expires + LEEWAY:
            raise InvalidToken("token expired")
        if now < not_before - LEEWAY:
            raise InvalidToken("token not valid yet")
        subject = claims.get("sub", "")
        if not isinstance(subject, str):
            raise InvalidToken("sub is not a string")
        return VerifiedToken(subject, _access(claims.get("access")), expires)


def _number(claims: dict[str, Any], name: str) -> float:
    value = claims.get(name, 0)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidToken(f"{name} is not a number")
    return float(value)


def _access(raw: object) -> dict[Resource, frozenset[str]]:
    if raw is None:
        return {}
    if not isinstance(raw, list):
        raise InvalidToken("access is not a list")
    access: dict[Resource, set[str]] = {}
    for entry in raw:
        if not isinstance(entry, dict):
            raise InvalidToken("an access entry is not an object")
        kind, name, actions = entry.get("type"), entry.get("name"), entry.get("actions")
        if not isinstance(kind, str) or not isinstance(name, str):
            raise InvalidToken("an access entry lacks a string type or name")
        if actions is None:
            actions = []
        if not isinstance(actions, list) or not all(isinstance(a, str) for a in actions):
            raise InvalidToken("an access entry's actions are not a list of strings")
        access.setdefault((kind, name), set()).update(actions)
    return {resource: frozenset(actions) for resource, actions in access.items()}
