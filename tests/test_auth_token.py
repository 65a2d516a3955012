"""The token controller against an external issuer: every way of naming the key."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from mirror.auth.access import Access, AuthRequest
from mirror.auth.challenge import Challenge
from mirror.auth.keys import (
    KeyFileError,
    jwk_public_key,
    jwk_thumbprint,
    libtrust_key_id,
    public_jwk,
)
from mirror.auth.token import TokenAccessController, TokenConfigError
from tests.support.tokens import (
    ISSUER,
    SERVICE,
    Issuer,
    PrivateKey,
    certificate,
    der_b64,
    ec_key,
    rsa_key,
    write_bundle,
    write_jwks,
)

pytestmark = pytest.mark.anyio
REALM = "https://auth.test/token"
PULL = (Access("repository", "team/app", "pull"),)
PUSH = (*PULL, Access("repository", "team/app", "push"))
TEAM_APP = [("repository", "team/app", ["pull", "push"])]


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def bearer(token: str) -> AuthRequest:
    return AuthRequest(f"Bearer {token}")


def controller(tmp_path: Path, *issuers: Issuer, **options: object) -> TokenAccessController:
    bundle = write_bundle(tmp_path / "bundle.pem", *(i.chain[-1] for i in issuers if i.chain))
    defaults: dict[str, object] = {
        "realm": REALM,
        "service": SERVICE,
        "issuer": ISSUER,
        "rootcertbundle": str(bundle),
    }
    return TokenAccessController(**(defaults | options))  # type: ignore[arg-type]


@pytest.fixture
def rsa_issuer() -> Issuer:
    key = rsa_key()
    return Issuer(key, [certificate("rsa-issuer", key)])


@pytest.mark.parametrize("how", ["x5c", "kid", "jwk"])
async def test_rs256_tokens_are_accepted_by_x5c_kid_and_jwk(
    tmp_path: Path, rsa_issuer: Issuer, how: str
) -> None:
    grant = await controller(tmp_path, rsa_issuer).authorized(
        bearer(rsa_issuer.token(TEAM_APP, how=how)), PUSH
    )
    assert (grant.user, grant.accesses) == ("alice", PUSH)


async def test_an_x5c_chain_through_an_intermediate(tmp_path: Path) -> None:
    root_key, middle_key, leaf_key = rsa_key(), ec_key(), ec_key()
    root = certificate("root", root_key)
    middle = certificate("middle", middle_key, issuer=("root", root_key))
    leaf = certificate("leaf", leaf_key, issuer=("middle", middle_key), ca=False)
    issuer = Issuer(leaf_key, [leaf, middle, root])
    checker = controller(tmp_path, issuer)
    assert (await checker.authorized(bearer(issuer.token(TEAM_APP)), PUSH)).user == "alice"
    # Without the intermediate the chain does not reach the root.
    issuer.chain = [leaf]
    with pytest.raises(Challenge, match="invalid token"):
        await checker.authorized(bearer(issuer.token(TEAM_APP)), PUSH)


async def test_a_libtrust_key_id_names_a_bundle_key(tmp_path: Path, rsa_issuer: Issuer) -> None:
    kid = libtrust_key_id(rsa_issuer.key.public_key())
    token = rsa_issuer.token(TEAM_APP, how="none", headers={"kid": kid})
    assert (await controller(tmp_path, rsa_issuer).authorized(bearer(token), PULL)).user == "alice"


async def test_jwks_keys_by_kid_rsa_ec_and_eddsa(tmp_path: Path) -> None:
    keys: dict[str, PrivateKey] = {
        "r": rsa_key(),
        "e": ec_key(),
        "d": ed25519.Ed25519PrivateKey.generate(),
    }
    jwks = write_jwks(tmp_path / "jwks.json", keys)
    checker = TokenAccessController(realm=REALM, service=SERVICE, issuer=ISSUER, jwks=str(jwks))
    for kid, key in keys.items():
        token = Issuer(key).token(TEAM_APP, how="none", headers={"kid": kid})
        assert (await checker.authorized(bearer(token), PUSH)).user == "alice"


async def test_a_jwk_header_is_trusted_only_for_a_trusted_key(
    tmp_path: Path, rsa_issuer: Issuer
) -> None:
    stranger = Issuer(rsa_key())
    checker = controller(tmp_path, rsa_issuer)
    with pytest.raises(Challenge, match="invalid token"):
        await checker.authorized(bearer(stranger.token(TEAM_APP, how="jwk")), PULL)
    # A jwk header that names a trusted key's kid but brings another key.
    forged = stranger.token(
        TEAM_APP, how="jwk", headers={"jwk": {**_jwk(stranger), "kid": rsa_issuer.thumbprint}}
    )
    with pytest.raises(Challenge, match="invalid token"):
        await checker.authorized(bearer(forged), PULL)


def _jwk(issuer: Issuer) -> dict[str, str]:
    return public_jwk(issuer.key.public_key())


async def test_a_jwk_header_with_its_own_x5c(tmp_path: Path, rsa_issuer: Issuer) -> None:
    jwk = {**_jwk(rsa_issuer), "x5c": [der_b64(rsa_issuer.chain[0])]}
    token = rsa_issuer.token(TEAM_APP, how="none", headers={"jwk": jwk})
    assert (await controller(tmp_path, rsa_issuer).authorized(bearer(token), PULL)).user == "alice"


async def test_anonymous_tokens_and_catalog_and_star(tmp_path: Path, rsa_issuer: Issuer) -> None:
    checker = controller(tmp_path, rsa_issuer)
    token = rsa_issuer.token(
        [
            ("repository", "pub/x", ["pull"]),
            ("registry", "catalog", ["*"]),
            ("repository", "a", ["*"]),
        ],
        subject="",
    )
    grant = await checker.authorized(bearer(token), [Access("registry", "catalog", "*")])
    assert grant.anonymous
    assert await checker.authorized(bearer(token), [Access("repository", "a", "delete")])
    with pytest.raises(Challenge, match="not authorized"):
        await checker.authorized(bearer(token), [Access("repository", "pub/x", "push")])


async def test_an_audience_list_containing_the_service(tmp_path: Path, rsa_issuer: Issuer) -> None:
    token = rsa_issuer.token(TEAM_APP, aud=["other", SERVICE])
    assert await controller(tmp_path, rsa_issuer).authorized(bearer(token), PULL)


async def test_insufficient_scope_challenge(tmp_path: Path, rsa_issuer: Issuer) -> None:
    token = rsa_issuer.token([("repository", "team/app", ["pull"])])
    with pytest.raises(Challenge) as caught:
        await controller(tmp_path, rsa_issuer).authorized(bearer(token), PUSH)
    assert caught.value.www_authenticate == (
        f'Bearer realm="{REALM}",service="{SERVICE}",'
        'scope="repository:team/app:pull,push",error="insufficient_scope"'
    )
    assert caught.value.missing == PUSH[1:]
    assert caught.value.detail == [{"Type": "repository", "Name": "team/app", "Action": "push"}]


@pytest.mark.parametrize("header", [None, "Basic YTpi", "Bearer", "Bearer   "])
async def test_no_token_is_challenged_without_an_error(
    tmp_path: Path, rsa_issuer: Issuer, header: str | None
) -> None:
    checker = controller(tmp_path, rsa_issuer)
    with pytest.raises(Challenge, match="authentication required") as caught:
        await checker.authorized(AuthRequest(header), PULL)
    assert caught.value.www_authenticate == (
        f'Bearer realm="{REALM}",service="{SERVICE}",scope="repository:team/app:pull"'
    )
    with pytest.raises(Challenge) as caught:
        await checker.authorized(AuthRequest(header), ())
    assert caught.value.www_authenticate == f'Bearer realm="{REALM}",service="{SERVICE}"'


async def test_the_base_route_takes_any_valid_token(tmp_path: Path, rsa_issuer: Issuer) -> None:
    grant = await controller(tmp_path, rsa_issuer).authorized(bearer(rsa_issuer.token()), ())
    assert grant.user == "alice"


async def test_autoredirect_realm(tmp_path: Path, rsa_issuer: Issuer) -> None:
    checker = controller(tmp_path, rsa_issuer, autoredirect=True)
    with pytest.raises(Challenge) as caught:
        await checker.authorized(AuthRequest(None, "reg.example:5000"), ())
    assert 'realm="https://reg.example:5000/auth/token"' in caught.value.www_authenticate
    checker = controller(tmp_path, rsa_issuer, autoredirect=True, autoredirectpath="/t")
    with pytest.raises(Challenge) as caught:
        await checker.authorized(AuthRequest(None, "reg.example", "http"), ())
    assert 'realm="http://reg.example/t"' in caught.value.www_authenticate
    # Without autoredirect, autoredirectpath changes nothing (as in registry:2).
    checker = controller(tmp_path, rsa_issuer, autoredirectpath="/t")
    assert checker.realm_for(AuthRequest(None, "reg.example")) == REALM


async def test_a_verified_token_is_remembered_until_it_expires(
    tmp_path: Path, rsa_issuer: Issuer
) -> None:
    token = rsa_issuer.token(TEAM_APP, lifetime=120)
    exp = json.loads(_payload(token))["exp"]
    clock = Clock(exp - 100)
    checker = controller(tmp_path, rsa_issuer, clock=clock)
    for _ in range(3):
        await checker.authorized(bearer(token), PULL)
    assert checker.verifications == 1
    clock.now = exp + 59  # still within the leeway
    await checker.authorized(bearer(token), PULL)
    assert checker.verifications == 1
    clock.now = exp + 61
    with pytest.raises(Challenge, match="invalid token"):
        await checker.authorized(bearer(token), PULL)


async def test_the_cache_is_bounded(tmp_path: Path, rsa_issuer: Issuer) -> None:
    checker = controller(tmp_path, rsa_issuer, cache_size=2)
    tokens = [rsa_issuer.token(TEAM_APP) for _ in range(3)]
    for token in tokens:
        await checker.authorized(bearer(token), PULL)
    await checker.authorized(bearer(tokens[0]), PULL)
    assert checker.verifications == 4


def _payload(token: str) -> bytes:
    part = token.split(".")[1]
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


async def test_signingalgorithms_limits_what_is_accepted(
    tmp_path: Path, rsa_issuer: Issuer
) -> None:
    checker = controller(tmp_path, rsa_issuer, signingalgorithms=["ES256"])
    with pytest.raises(Challenge, match="invalid token"):
        await checker.authorized(bearer(rsa_issuer.token(TEAM_APP)), PULL)
    checker = controller(tmp_path, rsa_issuer, signingalgorithms=["PS256", "RS256"])
    assert await checker.authorized(bearer(rsa_issuer.token(TEAM_APP)), PULL)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"rootcertbundle": None}, "at least one token signing key"),
        ({"signingalgorithms": ["HS256"]}, "HS256 is not supported"),
        ({"signingalgorithms": ["none"]}, "unsupported signing algorithm 'none'"),
        ({"signingalgorithms": ["RS1"]}, "unsupported signing algorithm 'RS1'"),
        ({"realm": ""}, "'realm'"),
        ({"issuer": None}, "'issuer'"),
        ({"rootcertbundle": "/nonexistent/bundle.pem"}, "No such file"),
    ],
)
def test_options_that_cannot_work_are_refused(
    tmp_path: Path, rsa_issuer: Issuer, options: dict[str, object], message: str
) -> None:
    with pytest.raises((TokenConfigError, KeyFileError), match=message):
        controller(tmp_path, rsa_issuer, **options)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "s"}]}', "symmetric"),
        ('{"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB"}]}', "string kid"),
        ('{"keys": [{"kty": "EC", "kid": "x", "crv": "P-256"}]}', "not a usable JWK"),
        ("[]", "expected"),
        ("not json", "not JSON"),
    ],
)
def test_bad_jwks_files_are_refused(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(content)
    with pytest.raises(KeyFileError, match=message):
        TokenAccessController(realm=REALM, service=SERVICE, issuer=ISSUER, jwks=str(path))


def test_a_bundle_without_certificates_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty.pem").write_text("nothing here\n")
    with pytest.raises(KeyFileError, match="certificate bundle"):
        TokenAccessController(
            realm=REALM, service=SERVICE, issuer=ISSUER, rootcertbundle=str(tmp_path / "empty.pem")
        )


def test_rfc7638_thumbprint_example() -> None:
    # The RSA key of RFC 7638 section 3.1 and its published thumbprint.
    n = (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_B"
        "JECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_F"
        "DW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4"
        "vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
    )
    key = jwk_public_key({"kty": "RSA", "n": n, "e": "AQAB"}, "rfc")
    assert jwk_thumbprint(key) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
