"""The token service's signing key and certificate: loaded from PEM, or made once and kept.

Tokens carry `kid` (the key's RFC 7638 thumbprint, how registry:3 finds a bundle key)
and, when there is a certificate, `x5c` (how registry:2 verifies against its
`rootcertbundle`). With `ensure_signing_key(directory)` an EC P-256 key (ES256, which
registry:2's libtrust verifies) and a self-signed certificate are generated on first
start and stored there (`token-key.pem` 0600, `token-cert.pem`); point a registry's
`rootcertbundle` at the certificate. Concurrent first starts agree on one key: files are
written to a temporary name and linked into place, and the loser reads the winner's.
"""

from __future__ import annotations

import base64
import datetime
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from mirror.auth.keys import KeyFileError, PublicKey, jwk_thumbprint, public_jwk
from mirror.auth.tokenservice import keyfiles

log = logging.getLogger("mirror.auth")

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
KEY_FILE = "token-key.pem"
CERT_FILE = "token-cert.pem"
CERT_LIFETIME = datetime.timedelta(days=3650)
_EC_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
_MIN_RSA_BITS = 2048


@dataclass(frozen=True, slots=True)
class SigningKey:
    private_key: PrivateKey
    algorithm: str
    kid: str
    certificate: x509.Certificate | None = None

    @classmethod
    def from_key(cls, key: object, certificate: x509.Certificate | None = None) -> SigningKey:
        """Wrap a private key; KeyFileError for an unusable key or a certificate of
        another key."""
        key = _as_private_key(key)
        algorithm = _algorithm(key)
        public = key.public_key()
        if certificate is not None and not _same_key(_public(certificate), public):
            raise KeyFileError("the token certificate is not the signing key's certificate")
        return cls(key, algorithm, jwk_thumbprint(public), certificate)

    @property
    def public_key(self) -> PublicKey:
        return self.private_key.public_key()

    def headers(self) -> dict[str, Any]:
        headers: dict[str, Any] = {"kid": self.kid}
        if self.certificate is not None:
            der = self.certificate.public_bytes(serialization.Encoding.DER)
            headers["x5c"] = [_b64(der)]
        return headers

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(
            claims, self.private_key, algorithm=self.algorithm, headers=self.headers()
        )

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """A JWK set of the public key, for a registry configured with `jwks`."""
        return {"keys": [public_jwk(self.public_key) | {"kid": self.kid, "alg": self.algorithm}]}

    def certificate_pem(self) -> bytes | None:
        if self.certificate is None:
            return None
        return self.certificate.public_bytes(serialization.Encoding.PEM)


def load_signing_key(
    key_path: str | os.PathLike[str], cert_path: str | os.PathLike[str] | None = None
) -> SigningKey:
    """A configured PEM private key (unencrypted PKCS#8 or traditional) and optionally
    its certificate; KeyFileError naming the file otherwise."""
    key = _load_private_key(Path(key_path))
    certificate = _load_certificate(Path(cert_path)) if cert_path else None
    return SigningKey.from_key(key, certificate)


def ensure_signing_key(
    directory: str | os.PathLike[str], *, subject: str = "mirror token service"
) -> SigningKey:
    """The key and certificate stored in `directory`, generated on first use."""
    root = Path(directory)
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    key_path, cert_path = root / KEY_FILE, root / CERT_FILE
    if not key_path.exists():
        pem = _new_key().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        if keyfiles.create(key_path, pem, mode=0o600):
            log.info("token service: generated a signing key in %s", key_path)
    key = _load_private_key(key_path)
    certificate = _load_certificate(cert_path) if cert_path.exists() else None
    if certificate is None or not _same_key(_public(certificate), key.public_key()):
        pem = _self_signed(key, subject).public_bytes(serialization.Encoding.PEM)
        if certificate is None:
            keyfiles.create(cert_path, pem, mode=0o644)
        else:  # a certificate of an older key could not verify new tokens
            keyfiles.replace(cert_path, pem, mode=0o644)
        log.info("token service: certificate in %s (trust it in rootcertbundle)", cert_path)
        # Read back what is on disk, so that processes starting together agree.
        certificate = _load_certificate(cert_path)
    return SigningKey.from_key(key, certificate)


def _new_key() -> ec.EllipticCurvePrivateKey:
    # Re-draw keys whose coordinates start with a zero byte: registry:3 drops those
    # bytes when it computes a thumbprint, and would not find the key by our `kid`.
    for _ in range(64):
        key = ec.generate_private_key(ec.SECP256R1())
        point = key.public_key().public_numbers()
        if point.x.bit_length() > 248 and point.y.bit_length() > 248:
            return key
    return key


def _self_signed(key: PrivateKey, subject: str) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(int.from_bytes(secrets.token_bytes(16), "big") >> 1)
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + CERT_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    return builder.sign(
        key, None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    )


def _as_private_key(key: object) -> PrivateKey:
    if isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        return key
    raise KeyFileError(f"unsupported signing key type {type(key).__name__} (RSA, EC, Ed25519)")


def _algorithm(key: PrivateKey) -> str:
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < _MIN_RSA_BITS:
            raise KeyFileError(f"an RSA signing key needs at least {_MIN_RSA_BITS} bits")
        return "RS256"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        algorithm = _EC_ALGORITHMS.get(key.curve.name)
        if algorithm is None:
            raise KeyFileError(f"unsupported curve {key.curve.name} (P-256, P-384, P-521)")
        return algorithm
    return "EdDSA"


def _load_private_key(path: Path) -> PrivateKey:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"token signing key {path}: {exc.strerror or exc}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"token signing key {path}: {exc}") from None
    private = _as_private_key(key)
    _algorithm(private)
    return private


def _load_certificate(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except OSError as exc:
        raise KeyFileError(f"token certificate {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise KeyFileError(f"token certificate {path}: {exc}") from None


def _same_key(a: PublicKey, b: PublicKey) -> bool:
    return jwk_thumbprint(a) == jwk_thumbprint(b)


def _public(certificate: x509.Certificate) -> PublicKey:
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey):
        raise KeyFileError("the token certificate's key is not RSA, EC or Ed25519")
    return key


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
