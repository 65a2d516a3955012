"""An external token issuer for tests: keys, certificates, and JWTs signed any which way.

It is deliberately not `mirror.auth.tokenservice`: tokens the controller must accept (or
refuse) come from code that shares nothing with ours but PyJWT and cryptography.
"""

from __future__ import annotations

import base64
import datetime
import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from mirror.auth.keys import jwk_thumbprint, public_jwk

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
ISSUER = "test-issuer"
SERVICE = "registry.test"
_DAY = datetime.timedelta(days=1)


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def ec_key(curve: ec.EllipticCurve | None = None) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(curve or ec.SECP256R1())


def certificate(
    subject: str,
    key: PrivateKey,
    *,
    issuer: tuple[str, PrivateKey] | None = None,
    ca: bool = True,
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
) -> x509.Certificate:
    """A certificate for `key`, self-signed unless `issuer` (name, key) signs it."""
    now = datetime.datetime.now(datetime.UTC)
    issuer_name, signer = issuer or (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - _DAY)
        .not_valid_after(not_after or now + _DAY)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    algorithm = None if isinstance(signer, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(signer, algorithm)


def der_b64(cert: x509.Certificate) -> str:
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


def write_bundle(path: Path, *certs: x509.Certificate) -> Path:
    path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))
    return path


def write_jwks(path: Path, keys: dict[str, PrivateKey]) -> Path:
    members = [public_jwk(key.public_key()) | {"kid": kid} for kid, key in keys.items()]
    path.write_text(json.dumps({"keys": members}))
    return path


def algorithm_for(key: PrivateKey) -> str:
    if isinstance(key, rsa.RSAPrivateKey):
        return "RS256"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}[key.curve.name]
    return "EdDSA"


@dataclass
class Issuer:
    """Signs tokens with `key`; `chain` (leaf first) goes into `x5c` when asked."""

    key: PrivateKey
    chain: Sequence[x509.Certificate] = ()
    issuer: str = ISSUER
    service: str = SERVICE
    extra_headers: dict[str, Any] = field(default_factory=dict)

    @property
    def thumbprint(self) -> str:
        return jwk_thumbprint(self.key.public_key())

    def claims(
        self,
        access: Sequence[tuple[str, str, Sequence[str]]] = (),
        *,
        subject: str = "alice",
        lifetime: float = 300,
        **overrides: Any,
    ) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.service,
            "exp": now + int(lifetime),
            "nbf": now - 1,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": [{"type": t, "name": n, "actions": list(a)} for t, n, a in access],
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def token(
        self,
        access: Sequence[tuple[str, str, Sequence[str]]] = (),
        *,
        how: str = "x5c",
        claims: dict[str, Any] | None = None,
        algorithm: str | None = None,
        headers: dict[str, Any] | None = None,
        **claim_overrides: Any,
    ) -> str:
        """A signed token; `how` names the key in the header: x5c, kid, jwk, or none."""
        header: dict[str, Any] = {}
        if how == "x5c":
            header["x5c"] = [der_b64(cert) for cert in self.chain]
        elif how == "kid":
            header["kid"] = self.thumbprint
        elif how == "jwk":
            header["jwk"] = public_jwk(self.key.public_key())
        header.update(self.extra_headers)
        header.update(headers or {})
        body = claims if claims is not None else self.claims(access, **claim_overrides)
        return jwt.encode(
            body, self.key, algorithm=algorithm or algorithm_for(self.key), headers=header
        )


def forge(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    """A token with any header, claims and signature bytes (for unsigned and HS256 forgeries)."""

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    return ".".join(
        [part(json.dumps(header).encode()), part(json.dumps(claims).encode()), part(signature)]
    )
