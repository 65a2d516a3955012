"""Public keys for token checks: loading them, naming them, matching them to algorithms.

Keys come from a PEM certificate bundle (`rootcertbundle`) or a JWK set file (`jwks`).
They are named the ways issuers put a key ID in a token's `kid`: the RFC 7638 JWK
thumbprint (registry:3), the JWK's own `kid` (jwks), and the libtrust key ID that
registry:2.x and older token servers use. Only asymmetric keys exist here: a token is
never checked with an HMAC secret, so the classic confusion (HS256 "signed" with a
public key) has no key to work with.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

_EC_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
_JWK_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
ASYMMETRIC_ALGORITHMS = RSA_ALGORITHMS | frozenset(_EC_ALGORITHMS.values()) | {"EdDSA"}
HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})


class KeyFileError(ValueError):
    """A key or certificate file cannot be used; the message says which and why."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int_bytes(value: int, length: int | None = None) -> bytes:
    size = length if length is not None else max(1, (value.bit_length() + 7) // 8)
    return value.to_bytes(size, "big")


def public_jwk(key: PublicKey) -> dict[str, str]:
    """The RFC 7517 members that identify `key` (the RFC 7638 required members)."""
    if isinstance(key, rsa.RSAPublicKey):
        numbers = key.public_numbers()
        return {
            "e": b64url(_int_bytes(numbers.e)),
            "kty": "RSA",
            "n": b64url(_int_bytes(numbers.n)),
        }
    if isinstance(key, ec.EllipticCurvePublicKey):
        size = (key.curve.key_size + 7) // 8
        point = key.public_numbers()
        return {
            "crv": _JWK_CURVES.get(key.curve.name, key.curve.name),
            "kty": "EC",
            "x": b64url(_int_bytes(point.x, size)),
            "y": b64url(_int_bytes(point.y, size)),
        }
    raw = key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return {"crv": "Ed25519", "kty": "OKP", "x": b64url(raw)}


def jwk_thumbprint(key: PublicKey) -> str:
    """RFC 7638 thumbprint (SHA-256, base64url): registry:3's name for a bundle key."""
    canonical = json.dumps(public_jwk(key), sort_keys=True, separators=(",", ":"))
    return b64url(hashlib.sha256(canonical.encode()).digest())


def _go_thumbprint(key: PublicKey) -> str | None:
    # registry:3 encodes EC coordinates without their leading zero bytes (Go's
    # big.Int.Bytes), unlike RFC 7638, so one key in 128 gets another thumbprint there.
    if not isinstance(key, ec.EllipticCurvePublicKey):
        return None
    point = key.public_numbers()
    members = public_jwk(key) | {"x": b64url(_int_bytes(point.x)), "y": b64url(_int_bytes(point.y))}
    canonical = json.dumps(members, sort_keys=True, separators=(",", ":"))
    return b64url(hashlib.sha256(canonical.encode()).digest())


def libtrust_key_id(key: PublicKey) -> str:
    """The libtrust key ID (registry:2.x): base32 of SHA-256(SPKI)[:30], in groups of 4."""
    der = key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    encoded = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(encoded[i : i + 4] for i in range(0, len(encoded), 4))


def key_names(key: PublicKey) -> list[str]:
    """Every `kid` under which an issuer may name `key`."""
    names = [jwk_thumbprint(key), libtrust_key_id(key)]
    go = _go_thumbprint(key)
    if go is not None and go not in names:
        names.append(go)
    return names


def algorithm_fits(algorithm: str, key: PublicKey) -> bool:
    """True when `algorithm` is one that `key` can verify (RSA: RS*/PS*, EC by curve, EdDSA)."""
    if isinstance(key, rsa.RSAPublicKey):
        return algorithm in RSA_ALGORITHMS
    if isinstance(key, ec.EllipticCurvePublicKey):
        return _EC_ALGORITHMS.get(key.curve.name) == algorithm
    return algorithm == "EdDSA"


def as_public_key(key: object, what: str) -> PublicKey:
    if isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey):
        return key
    raise KeyFileError(f"{what}: unsupported key type {type(key).__name__} (RSA, EC, Ed25519)")


def load_certificates(path: str | Path) -> list[x509.Certificate]:
    """Every certificate in a PEM bundle; KeyFileError when unreadable or holding none."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise KeyFileError(f"certificate bundle {path}: {exc.strerror or exc}") from None
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise KeyFileError(f"certificate bundle {path}: {exc}") from None
    for certificate in certificates:
        as_public_key(certificate.public_key(), f"certificate bundle {path}")
    return certificates


def load_jwks(path: str | Path) -> dict[str, PublicKey]:
    """The keys of a JWK set file by `kid`; symmetric (`oct`) keys and keys without a
    `kid` are refused (KeyFileError)."""
    try:
        document = json.loads(Path(path).read_bytes())
    except OSError as exc:
        raise KeyFileError(f"jwks {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise KeyFileError(f"jwks {path}: not JSON: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise KeyFileError(f'jwks {path}: expected {{"keys": [...]}}')
    keys: dict[str, PublicKey] = {}
    for index, member in enumerate(document["keys"]):
        where = f"jwks {path} key {index}"
        if not isinstance(member, dict) or not isinstance(member.get("kid"), str):
            raise KeyFileError(f"{where}: every key needs a string kid")
        if member.get("kty") == "oct":
            raise KeyFileError(f"{where}: symmetric (oct) keys are not accepted")
        keys[member["kid"]] = jwk_public_key(member, where)
    return keys


def jwk_public_key(member: dict[str, object], where: str) -> PublicKey:
    """The public key of one JWK (private members, if any, are ignored)."""
    public = {k: v for k, v in member.items() if k not in {"d", "p", "q", "dp", "dq", "qi"}}
    try:
        key = jwt.PyJWK(public).key
    except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError, KeyError) as exc:
        raise KeyFileError(f"{where}: not a usable JWK: {exc}") from None
    return as_public_key(key, where)


def trusted_keys(
    certificates: Iterable[x509.Certificate], jwks: dict[str, PublicKey]
) -> dict[str, PublicKey]:
    """Keys by every name a `kid` may use: bundle keys by thumbprint and libtrust ID,
    jwks keys by their `kid` (which wins on a clash: it was named explicitly)."""
    keys: dict[str, PublicKey] = {}
    for certificate in certificates:
        key = as_public_key(certificate.public_key(), "certificate")
        for name in key_names(key):
            keys[name] = key
    keys.update(jwks)
    return keys
