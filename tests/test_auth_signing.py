"""The token service's signing key (configured or generated once) and refresh tokens."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import bcrypt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from mirror.auth.keys import KeyFileError, jwk_thumbprint
from mirror.auth.tokenservice.refresh import RefreshTokenInvalid, RefreshTokens
from mirror.auth.tokenservice.signing import (
    CERT_FILE,
    KEY_FILE,
    SigningKey,
    ensure_signing_key,
    load_signing_key,
)
from tests.support.tokens import certificate, rsa_key, write_bundle


def pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def test_a_generated_key_is_kept_private_and_reused(tmp_path: Path) -> None:
    first = ensure_signing_key(tmp_path / "keys")
    assert stat.S_IMODE((tmp_path / "keys" / KEY_FILE).stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    assert first.algorithm == "ES256"
    assert first.certificate is not None
    again = ensure_signing_key(tmp_path / "keys")
    assert again.kid == first.kid == jwk_thumbprint(first.public_key)
    assert again.certificate == first.certificate
    assert not [p.name for p in (tmp_path / "keys").iterdir() if p.name.endswith(".tmp")]


def test_concurrent_first_starts_agree_on_one_key(tmp_path: Path) -> None:
    kids: list[str] = []
    certs: list[bytes | None] = []

    def start() -> None:
        key = ensure_signing_key(tmp_path / "keys")
        kids.append(key.kid)
        certs.append(key.certificate_pem())

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(set(kids)) == 1 and len(kids) == 8
    assert len(set(certs)) == 1
    assert certs[0] == (tmp_path / "keys" / CERT_FILE).read_bytes()


def test_a_certificate_of_another_key_is_replaced(tmp_path: Path) -> None:
    ensure_signing_key(tmp_path)
    write_bundle(tmp_path / CERT_FILE, certificate("other", rsa_key()))
    key = ensure_signing_key(tmp_path)
    assert key.certificate is not None
    assert jwk_thumbprint(key.certificate.public_key()) == key.kid  # type: ignore[arg-type]


def test_the_generated_certificate_can_sign_for_itself(tmp_path: Path) -> None:
    cert = ensure_signing_key(tmp_path).certificate
    assert cert is not None
    assert cert.subject == cert.issuer
    cert.verify_directly_issued_by(cert)


@pytest.mark.parametrize(
    ("key", "algorithm"),
    [
        (rsa_key(), "RS256"),
        (ec.generate_private_key(ec.SECP384R1()), "ES384"),
        (ec.generate_private_key(ec.SECP521R1()), "ES512"),
        (ed25519.Ed25519PrivateKey.generate(), "EdDSA"),
    ],
)
def test_configured_keys_of_each_kind(
    tmp_path: Path,
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey,
    algorithm: str,
) -> None:
    (tmp_path / "key.pem").write_bytes(pem(key))
    cert = write_bundle(tmp_path / "cert.pem", certificate("svc", key))
    loaded = load_signing_key(tmp_path / "key.pem", cert)
    assert loaded.algorithm == algorithm
    assert loaded.headers()["kid"] == jwk_thumbprint(key.public_key())
    assert "x5c" in loaded.headers()
    assert "x5c" not in load_signing_key(tmp_path / "key.pem").headers()
    assert loaded.jwks()["keys"][0]["kid"] == loaded.kid


def test_unusable_keys_are_refused(tmp_path: Path) -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    (tmp_path / "small.pem").write_bytes(pem(small))
    with pytest.raises(KeyFileError, match="at least 2048 bits"):
        load_signing_key(tmp_path / "small.pem")
    (tmp_path / "junk.pem").write_text("junk")
    with pytest.raises(KeyFileError, match=r"junk\.pem"):
        load_signing_key(tmp_path / "junk.pem")
    with pytest.raises(KeyFileError, match="No such file"):
        load_signing_key(tmp_path / "missing.pem")
    key = rsa_key()
    (tmp_path / "key.pem").write_bytes(pem(key))
    other = write_bundle(tmp_path / "other.pem", certificate("x", rsa_key()))
    with pytest.raises(KeyFileError, match="not the signing key's certificate"):
        load_signing_key(tmp_path / "key.pem", other)
    k192 = ec.generate_private_key(ec.SECP192R1())
    with pytest.raises(KeyFileError, match="unsupported curve"):
        SigningKey.from_key(k192)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def refresh(tmp_path: Path) -> tuple[RefreshTokens, Clock]:
    clock = Clock()
    return RefreshTokens(
        ensure_signing_key(tmp_path), issuer="me", lifetime=100, clock=clock
    ), clock


ENTRY = bcrypt.hashpw(b"pw", bcrypt.gensalt(4))


def test_a_refresh_token_names_its_user(refresh: tuple[RefreshTokens, Clock]) -> None:
    tokens, _ = refresh
    token = tokens.mint("alice", "svc", ENTRY)
    assert tokens.check(token, "svc", {"alice": ENTRY}.get) == "alice"


def test_a_refresh_token_ends_with_a_new_password_or_a_removed_user(
    refresh: tuple[RefreshTokens, Clock],
) -> None:
    tokens, _ = refresh
    token = tokens.mint("alice", "svc", ENTRY)
    new_entry = bcrypt.hashpw(b"new", bcrypt.gensalt(4))
    with pytest.raises(RefreshTokenInvalid, match="changed their password"):
        tokens.check(token, "svc", {"alice": new_entry}.get)
    with pytest.raises(RefreshTokenInvalid, match="is gone"):
        tokens.check(token, "svc", lambda user: None)


def test_a_refresh_token_expires_and_is_bound_to_its_service(
    refresh: tuple[RefreshTokens, Clock],
) -> None:
    tokens, clock = refresh
    token = tokens.mint("alice", "svc", ENTRY)
    with pytest.raises(RefreshTokenInvalid):
        tokens.check(token, "other-svc", {"alice": ENTRY}.get)
    clock.now += 101
    with pytest.raises(RefreshTokenInvalid, match="expired"):
        tokens.check(token, "svc", {"alice": ENTRY}.get)


def test_refresh_tokens_of_another_key_or_an_access_token_are_refused(tmp_path: Path) -> None:
    one = RefreshTokens(ensure_signing_key(tmp_path / "a"), issuer="me")
    two = RefreshTokens(ensure_signing_key(tmp_path / "b"), issuer="me")
    with pytest.raises(RefreshTokenInvalid):
        two.check(one.mint("alice", "svc", ENTRY), "svc", {"alice": ENTRY}.get)
    access = ensure_signing_key(tmp_path / "a").sign({"sub": "alice", "aud": "svc", "exp": 2**40})
    with pytest.raises(RefreshTokenInvalid, match="not a refresh token"):
        one.check(access, "svc", {"alice": ENTRY}.get)
    for junk in ("", "abc", "a.b.c", "x" * 10000):
        with pytest.raises(RefreshTokenInvalid):
            one.check(junk, "svc", {"alice": ENTRY}.get)
