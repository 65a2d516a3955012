"""Bad input: every malformed header and every forged or stale token is a 401 challenge.

Never another exception, never access. The header value of each challenge must also
stay a valid HTTP header, whatever the request carried.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import bcrypt
import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from mirror.auth.access import Access, AuthRequest
from mirror.auth.challenge import Challenge
from mirror.auth.controller import AccessController
from mirror.auth.htpasswd import HtpasswdAccessController
from mirror.auth.policy import AccessPolicy
from mirror.auth.silly import SillyAccessController
from mirror.auth.token import TokenAccessController
from tests.support.tokens import (
    ISSUER,
    SERVICE,
    Issuer,
    certificate,
    der_b64,
    forge,
    rsa_key,
    write_bundle,
)

pytestmark = pytest.mark.anyio
PULL = (Access("repository", "team/app", "pull"),)
ACCESS = [("repository", "team/app", ["pull", "push"])]


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


MALFORMED_HEADERS = [
    "",
    " ",
    "Basic",
    "Basic ",
    "Basic !!!",
    "Basic YWxpY2U",  # bad padding
    "Basic " + b64(b"alice"),  # no colon
    "Basic " + b64(b":secret"),
    "Basic " + b64(b"\xff\xfe:\xff"),
    "Basic " + b64(b"al\x00ice:x"),
    "Basic " + b64(b"alice:wonderland") + " trailing",
    "Basic " + "A" * (64 * 1024),
    "Basic " + b64(b"alice:" + b"x" * 48 * 1024),
    "Bearer",
    "Bearer " + "a" * (64 * 1024),
    "Bearer not-a-jwt",
    "Bearer a.b.c",
    "Bearer ....",
    "Bearer " + b64(b"{}") + "." + b64(b"{}") + ".",
    "Bearer e30.e30.e30.e30",
    "Bearer x y z",
    'Bearer "quoted"',
    "Negotiate abc",
    "\x00\x01\x02",
    "Basic " + b64(b"alice:wonderland") + ", Basic " + b64(b"bob:builder"),
    "☃ ☃",
]


@pytest.fixture
def issuer() -> Issuer:
    key = rsa_key()
    return Issuer(key, [certificate("issuer", key)])


@pytest.fixture
def htpasswd_controller(tmp_path: Path) -> HtpasswdAccessController:
    path = tmp_path / "htpasswd"
    hashed = bcrypt.hashpw(b"wonderland", bcrypt.gensalt(4)).decode()
    path.write_text(f"alice:{hashed}\n")
    return HtpasswdAccessController(realm="r", path=path)


@pytest.fixture
def token_controller(tmp_path: Path, issuer: Issuer) -> TokenAccessController:
    bundle = write_bundle(tmp_path / "bundle.pem", issuer.chain[0])
    return TokenAccessController(
        realm="https://auth.test/token", service=SERVICE, issuer=ISSUER, rootcertbundle=str(bundle)
    )


async def refused(
    controller: AccessController, header: str | None, accesses: Sequence[Access] = PULL
) -> Challenge:
    with pytest.raises(Challenge) as caught:
        await controller.authorized(AuthRequest(header), accesses)
    caught.value.www_authenticate.encode("latin-1")
    assert "\r" not in caught.value.www_authenticate and "\n" not in caught.value.www_authenticate
    return caught.value


@pytest.mark.parametrize("header", MALFORMED_HEADERS, ids=range(len(MALFORMED_HEADERS)))
async def test_htpasswd_refuses_malformed_headers(
    htpasswd_controller: HtpasswdAccessController, header: str
) -> None:
    challenge = await refused(htpasswd_controller, header)
    assert challenge.www_authenticate == 'Basic realm="r"'


@pytest.mark.parametrize("header", MALFORMED_HEADERS, ids=range(len(MALFORMED_HEADERS)))
async def test_token_refuses_malformed_headers(
    token_controller: TokenAccessController, header: str
) -> None:
    challenge = await refused(token_controller, header)
    assert challenge.www_authenticate.startswith('Bearer realm="https://auth.test/token"')


async def test_silly_refuses_empty_and_oversized_headers() -> None:
    silly = SillyAccessController(realm="r", service="s")
    for header in (None, "", "  ", "x" * (64 * 1024)):
        await refused(silly, header)
    assert (await silly.authorized(AuthRequest("anything at all"), PULL)).user == "silly"


async def test_a_malformed_header_is_refused_even_where_anonymous_may_pull(tmp_path: Path) -> None:
    path = tmp_path / "htpasswd"
    path.write_text("")
    policy = AccessPolicy.mirror_default(["team"])
    controller = HtpasswdAccessController(realm="r", path=path, policy=policy)
    assert (await controller.authorized(AuthRequest(), PULL)).anonymous
    for header in MALFORMED_HEADERS:
        await refused(controller, header)


class Forger:
    """Builds bad tokens around a trusted issuer and a stranger with a look-alike cert."""

    def __init__(self, issuer: Issuer) -> None:
        self.issuer = issuer
        key = rsa_key()
        self.stranger = Issuer(key, [certificate("issuer", key)])
        self.claims = issuer.claims(ACCESS)
        self.cert = der_b64(issuer.chain[0])
        self.now = int(time.time())

    def token(self, **options: Any) -> str:
        return self.issuer.token(ACCESS, **options)

    def hs256_with_public_key(self, header: dict[str, object]) -> str:
        """The classic confusion: an HMAC keyed with the PEM of the RSA public key."""
        public_pem = self.issuer.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        unsigned = forge(header, self.claims).rsplit(".", 1)[0]
        mac = hmac.new(public_pem, unsigned.encode(), hashlib.sha256).digest()
        return unsigned + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    def signed(self, payload: bytes) -> str:
        """A properly signed token (x5c) whose payload is `payload` as is."""
        return jwt.PyJWS().encode(
            payload, self.issuer.key, algorithm="RS256", headers={"x5c": [self.cert]}
        )

    def spliced(self, part: str) -> str:
        head, body, signature = self.token().split(".")
        other = self.issuer.token([("repository", "team/app", ["*"])], subject="root")
        if part == "payload":
            return f"{head}.{other.split('.')[1]}.{signature}"
        if part == "cut":
            return f"{head}.{body}.{signature[:-1]}"  # a length base64 cannot have
        return f"{head}.{body}."


def bad_claims(**changes: object) -> Callable[[Forger], str]:
    return lambda f: f.token(claims={**f.claims, **changes})


TOKEN_CASES: dict[str, Callable[[Forger], str]] = {
    "expired beyond the leeway": lambda f: f.token(exp=f.now - 61),
    "not valid yet beyond the leeway": lambda f: f.token(nbf=f.now + 120),
    "no exp": lambda f: f.token(exp=None),
    "exp not a number": lambda f: f.token(exp=str(f.now + 100)),
    "exp a boolean": lambda f: f.token(exp=True),
    "wrong issuer": lambda f: f.token(iss="someone-else"),
    "no issuer": lambda f: f.token(iss=None),
    "wrong audience": lambda f: f.token(aud="other.registry"),
    "audience list without us": lambda f: f.token(aud=["a", "b"]),
    "no audience": lambda f: f.token(aud=None),
    "audience a number": lambda f: f.token(aud=5),
    "alg none": lambda f: forge({"alg": "none", "typ": "JWT"}, f.claims),
    "alg none with x5c": lambda f: forge({"alg": "none", "x5c": [f.cert]}, f.claims),
    "alg None capitalised": lambda f: forge({"alg": "None", "x5c": [f.cert]}, f.claims),
    "no alg": lambda f: forge({"x5c": [f.cert]}, f.claims, b"sig"),
    "HS256 keyed with the RSA public key (x5c)": lambda f: f.hs256_with_public_key(
        {"alg": "HS256", "typ": "JWT", "x5c": [f.cert]}
    ),
    "HS256 keyed with the RSA public key (kid)": lambda f: f.hs256_with_public_key(
        {"alg": "HS256", "typ": "JWT", "kid": f.issuer.thumbprint}
    ),
    "signed by an untrusted key (x5c)": lambda f: f.stranger.token(ACCESS),
    "signed by an untrusted key (kid)": lambda f: f.stranger.token(ACCESS, how="kid"),
    "untrusted key claiming a trusted kid": lambda f: f.stranger.token(
        ACCESS, how="none", headers={"kid": f.issuer.thumbprint}
    ),
    "trusted x5c, signed by another key": lambda f: f.stranger.token(
        ACCESS, how="none", headers={"x5c": [f.cert]}
    ),
    "untrusted jwk": lambda f: f.stranger.token(ACCESS, how="jwk"),
    "algorithm not fitting the key": lambda f: forge(
        {"alg": "ES256", "kid": f.issuer.thumbprint}, f.claims, b"x" * 64
    ),
    "no key named": lambda f: f.token(how="none"),
    "unknown kid": lambda f: f.token(how="none", headers={"kid": "nope"}),
    "x5c not a list": lambda f: f.token(how="none", headers={"x5c": "abc"}),
    "x5c of garbage": lambda f: f.token(how="none", headers={"x5c": ["!!!"]}),
    "x5c of a non-certificate": lambda f: f.token(how="none", headers={"x5c": [b64(b"x")]}),
    "x5c of numbers": lambda f: f.token(how="none", headers={"x5c": [1, 2]}),
    "x5c too long": lambda f: f.token(how="none", headers={"x5c": [f.cert] * 9}),
    "jwk not an object": lambda f: f.token(how="none", headers={"jwk": "x"}),
    "jwk of garbage": lambda f: f.token(how="none", headers={"jwk": {"kty": "RSA"}}),
    "crit header": lambda f: f.token(headers={"crit": ["exp"]}),
    "header not JSON": lambda f: "bm90IGpzb24." + f.token().split(".", 1)[1],
    "payload swapped": lambda f: f.spliced("payload"),
    "signature cut": lambda f: f.spliced("cut"),
    "signature empty": lambda f: f.spliced("empty"),
    "access not a list": bad_claims(access={"a": 1}),
    "access entry not an object": bad_claims(access=["x"]),
    "access actions not strings": bad_claims(
        access=[{"type": "repository", "name": "team/app", "actions": [1]}]
    ),
    "access name missing": bad_claims(access=[{"type": "repository", "actions": ["pull"]}]),
    "sub not a string": lambda f: f.token(sub=7),
    "claims not an object": lambda f: f.signed(b"[1, 2]"),
    "claims not JSON": lambda f: f.signed(b"not json"),
}


# Why each one is refused: a refusal for another reason would hide a missing check.
REASONS: dict[str, str] = {
    "expired beyond the leeway": "expired",
    "not valid yet beyond the leeway": "not valid yet",
    "no exp": "expired",
    "exp not a number": "exp is not a number",
    "exp a boolean": "exp is not a number",
    "wrong issuer": "untrusted issuer",
    "no issuer": "untrusted issuer",
    "wrong audience": "another audience",
    "audience list without us": "another audience",
    "no audience": "another audience",
    "audience a number": "another audience",
    "alg none": "not accepted",
    "alg none with x5c": "not accepted",
    "alg None capitalised": "not accepted",
    "no alg": "not accepted",
    "HS256 keyed with the RSA public key (x5c)": "'HS256' is not accepted",
    "HS256 keyed with the RSA public key (kid)": "'HS256' is not accepted",
    "signed by an untrusted key (x5c)": "x5c chain does not verify",
    "signed by an untrusted key (kid)": "untrusted key with ID",
    "untrusted key claiming a trusted kid": "Signature verification failed",
    "trusted x5c, signed by another key": "Signature verification failed",
    "untrusted jwk": "untrusted jwk",
    "algorithm not fitting the key": "does not fit the signing key",
    "no key named": "names no signing key",
    "unknown kid": "untrusted key with ID 'nope'",
    "x5c not a list": "x5c is not a list",
    "x5c of garbage": "undecodable certificate",
    "x5c of a non-certificate": "undecodable certificate",
    "x5c of numbers": "something other than a certificate",
    "x5c too long": "x5c is not a list",
    "jwk not an object": "jwk header is not an object",
    "jwk of garbage": "not a usable JWK",
    "crit header": "critical",
    "header not JSON": "malformed token",
    "payload swapped": "Signature verification failed",
    "signature cut": "malformed token",
    "signature empty": "Signature verification failed",
    "access not a list": "access is not a list",
    "access entry not an object": "not an object",
    "access actions not strings": "not a list of strings",
    "access name missing": "lacks a string type or name",
    "sub not a string": "sub is not a string",
    "claims not an object": "claims are not a JSON object",
    "claims not JSON": "Expecting value",
}


@pytest.mark.parametrize("case", list(TOKEN_CASES))
async def test_bad_tokens_are_invalid_token_challenges(
    token_controller: TokenAccessController, issuer: Issuer, case: str
) -> None:
    token = TOKEN_CASES[case](Forger(issuer))
    challenge = await refused(token_controller, f"Bearer {token}")
    assert challenge.www_authenticate.endswith(',error="invalid_token"'), challenge.reason
    assert challenge.message == "invalid token"
    assert REASONS[case] in challenge.reason


async def test_within_the_leeway_tokens_are_accepted(
    token_controller: TokenAccessController, issuer: Issuer
) -> None:
    now = int(time.time())
    for token in (issuer.token(ACCESS, exp=now - 50), issuer.token(ACCESS, nbf=now + 50)):
        assert (await token_controller.authorized(AuthRequest(f"Bearer {token}"), PULL)).user


async def test_a_good_token_passes_the_same_checks(
    token_controller: TokenAccessController, issuer: Issuer
) -> None:
    # The control case: the fixture's own token is accepted, so the refusals are real.
    assert await token_controller.authorized(AuthRequest(f"Bearer {issuer.token(ACCESS)}"), PULL)


@pytest.mark.parametrize(
    "name",
    ['team/app"x', "team/app\r\nSet-Cookie: a=b", "☃/app", "a\\b", "x" * 4096],
)
async def test_odd_repository_names_never_break_the_challenge(
    token_controller: TokenAccessController,
    htpasswd_controller: HtpasswdAccessController,
    name: str,
) -> None:
    accesses = [Access("repository", name, "pull")]
    for controller in (token_controller, htpasswd_controller):
        await refused(controller, None, accesses)
    await refused(SillyAccessController(realm="r", service="s"), None, accesses)


async def test_a_token_for_odd_scope_characters_grants_nothing_else(
    token_controller: TokenAccessController, issuer: Issuer
) -> None:
    token = issuer.token([("repository", "team/*", ["pull"]), ("repository", "team/app ", ["*"])])
    await refused(token_controller, f"Bearer {token}")


def test_every_bad_token_has_its_reason() -> None:
    assert set(REASONS) == set(TOKEN_CASES)
