"""The token endpoint: GET (token.md) and POST (oauth.md), over a real ASGI transport."""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import bcrypt
import httpx
import jwt
import pytest
from cryptography import x509

from mirror.auth.access import Access, AuthRequest
from mirror.auth.challenge import Challenge
from mirror.auth.keys import jwk_thumbprint
from mirror.auth.policyfile import parse_policy_yaml
from mirror.auth.token import TokenAccessController
from mirror.auth.tokenservice import TokenService, create_token_service, ensure_signing_key
from mirror.auth.users import HtpasswdUsers

pytestmark = pytest.mark.anyio
SERVICE = "registry.test"
ISSUER = "mirror-test"
POLICY = b"""
rules:
  - repository: team/**
    allow: {user:alice: [pull, push], anonymous: [pull]}
  - repository: localhost:5000/x
    allow: {user:alice: [pull]}
catalog: [user:alice]
"""


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


ALICE = basic("alice", "wonderland")


def claims_of(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return claims


def header_of(token: str) -> dict[str, Any]:
    part = token.split(".", maxsplit=1)[0]
    header: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return header


def access_of(token: str) -> list[tuple[str, str, list[str]]]:
    return [(a["type"], a["name"], a["actions"]) for a in claims_of(token)["access"]]


@pytest.fixture
def htpasswd(tmp_path: Path) -> Path:
    path = tmp_path / "htpasswd"
    path.write_text(f"alice:{bcrypt.hashpw(b'wonderland', bcrypt.gensalt(4)).decode()}\n")
    return path


@pytest.fixture
def service(htpasswd: Path, tmp_path: Path) -> TokenService:
    return create_token_service(
        issuer=ISSUER,
        service=SERVICE,
        htpasswd=htpasswd,
        key_directory=tmp_path / "keys",
        policy=parse_policy_yaml(POLICY),
    )


@pytest.fixture
async def client(service: TokenService) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=service)
    async with httpx.AsyncClient(transport=transport, base_url="http://auth.test") as client:
        yield client


async def get_token(client: httpx.AsyncClient, *scopes: str, **params: str) -> httpx.Response:
    query: list[tuple[str, str | int | float | bool | None]] = [
        ("service", SERVICE),
        *(("scope", s) for s in scopes),
    ]
    headers = ALICE if params.pop("login", "yes") == "yes" else {}
    query += list(params.items())
    return await client.get("/token", params=query, headers=headers)


async def test_a_token_holds_what_the_policy_allows_of_what_was_asked(
    client: httpx.AsyncClient,
) -> None:
    response = await get_token(client, "repository:team/app:pull,push,delete")
    assert response.status_code == 200
    body = response.json()
    assert body["token"] == body["access_token"]
    assert body["expires_in"] == 300
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["issued_at"])
    assert "refresh_token" not in body
    assert response.headers["cache-control"] == "no-store"
    assert access_of(body["token"]) == [("repository", "team/app", ["pull", "push"])]


async def test_the_claims_follow_jwt_md(client: httpx.AsyncClient, tmp_path: Path) -> None:
    token = (await get_token(client, "repository:team/app:pull")).json()["token"]
    claims = claims_of(token)
    assert (claims["iss"], claims["sub"], claims["aud"]) == (ISSUER, "alice", SERVICE)
    assert claims["exp"] - claims["iat"] == 300
    assert claims["nbf"] == claims["iat"]
    assert len(claims["jti"]) >= 16
    header = header_of(token)
    assert header["alg"] == "ES256" and header["typ"] == "JWT"
    assert len(header["x5c"]) == 1
    cert = x509.load_pem_x509_certificate((tmp_path / "keys" / "token-cert.pem").read_bytes())
    assert header["kid"] == jwk_thumbprint(cert.public_key())  # type: ignore[arg-type]


async def test_scopes_in_several_params_and_space_separated(client: httpx.AsyncClient) -> None:
    response = await get_token(
        client,
        "repository:team/a:pull repository:team/b:push",
        "repository:team/c:pull",
        "repository:localhost:5000/x:pull,push",
        "registry:catalog:*",
    )
    assert access_of(response.json()["token"]) == [
        ("repository", "team/a", ["pull"]),
        ("repository", "team/b", ["push"]),
        ("repository", "team/c", ["pull"]),
        ("repository", "localhost:5000/x", ["pull"]),
        ("registry", "catalog", ["*"]),
    ]


async def test_no_access_is_not_an_error(client: httpx.AsyncClient) -> None:
    response = await get_token(client, "repository:other/app:pull,push")
    assert response.status_code == 200
    assert access_of(response.json()["token"]) == [("repository", "other/app", [])]


@pytest.mark.parametrize(
    "scope",
    [
        "repository:team/app",
        "repository:Team/App:pull",
        "widget:team/app:pull",
        "registry:other:*",
        "repository:team/app:pull;rm",
        "repository:team/app:\x00",
        "repository:team/app:pull" + "," * 5000,
        "repository(plugin:team/app:pull",
        "::::",
        "",
    ],
)
async def test_malformed_and_unknown_scopes_are_ignored(
    client: httpx.AsyncClient, scope: str
) -> None:
    response = await get_token(client, scope, "repository:team/ok:pull")
    assert response.status_code == 200
    assert access_of(response.json()["token"]) == [("repository", "team/ok", ["pull"])]


async def test_the_resource_class_is_accepted_and_dropped(client: httpx.AsyncClient) -> None:
    response = await get_token(client, "repository(plugin):team/app:pull")
    assert access_of(response.json()["token"]) == [("repository", "team/app", ["pull"])]


async def test_anonymous_gets_what_anonymous_may(client: httpx.AsyncClient) -> None:
    response = await get_token(
        client, "repository:team/app:pull,push", "registry:catalog:*", login="no"
    )
    assert response.status_code == 200
    token = response.json()["token"]
    assert claims_of(token)["sub"] == ""
    assert access_of(token) == [("repository", "team/app", ["pull"]), ("registry", "catalog", [])]


@pytest.mark.parametrize(
    "headers",
    [
        basic("alice", "wrong"),
        basic("nobody", "wonderland"),
        {"Authorization": "Basic !!!"},
        {"Authorization": "Basic " + "A" * 65536},
        {"Authorization": "Bearer abc"},
        {"Authorization": ""},
    ],
)
async def test_bad_credentials_are_a_401_with_a_basic_challenge(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await client.get("/token", params={"service": SERVICE}, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Basic realm="mirror token service"'
    assert response.json()["error"] in {"invalid_grant", "invalid_client"}


async def test_account_must_match_the_login(client: httpx.AsyncClient) -> None:
    assert (await get_token(client, account="alice")).status_code == 200
    response = await get_token(client, account="bob")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_service_must_be_ours_when_given(client: httpx.AsyncClient) -> None:
    response = await client.get("/token", params={"service": "elsewhere"}, headers=ALICE)
    assert response.status_code == 400
    assert claims_of((await client.get("/token", headers=ALICE)).json()["token"])["aud"] == SERVICE


async def test_offline_token_gives_a_refresh_token_that_the_post_form_takes(
    client: httpx.AsyncClient,
) -> None:
    body = (await get_token(client, offline_token="true", client_id="docker")).json()
    refresh = body["refresh_token"]
    response = await client.post(
        "/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh,
            "service": SERVICE,
            "client_id": "docker",
            "scope": "repository:team/app:pull,push repository:other/x:pull",
        },
    )
    assert response.status_code == 200
    renewed = response.json()
    assert renewed["refresh_token"] == refresh
    assert renewed["scope"] == "repository:team/app:pull,push"
    assert access_of(renewed["access_token"])[0] == ("repository", "team/app", ["pull", "push"])
    assert claims_of(renewed["access_token"])["sub"] == "alice"


async def test_anonymous_gets_no_refresh_token(client: httpx.AsyncClient) -> None:
    body = (await get_token(client, offline_token="true", login="no")).json()
    assert "refresh_token" not in body


async def test_password_grant(client: httpx.AsyncClient) -> None:
    form = {
        "grant_type": "password",
        "username": "alice",
        "password": "wonderland",
        "service": SERVICE,
        "client_id": "test",
        "access_type": "offline",
        "scope": "repository:team/app:push",
    }
    body = (await client.post("/token", data=form)).json()
    assert body["scope"] == "repository:team/app:push"
    assert body["expires_in"] == 300
    assert "refresh_token" in body
    del form["access_type"]
    assert "refresh_token" not in (await client.post("/token", data=form)).json()


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"grant_type": "password", "username": "alice", "password": "no"}, "invalid_grant"),
        ({"grant_type": "password", "username": "", "password": ""}, "invalid_grant"),
        ({"grant_type": "password"}, "invalid_grant"),
        ({"grant_type": "refresh_token", "refresh_token": "abc"}, "invalid_grant"),
        ({"grant_type": "refresh_token"}, "invalid_grant"),
        ({"grant_type": "authorization_code", "code": "x"}, "unsupported_grant_type"),
        ({}, "unsupported_grant_type"),
    ],
)
async def test_post_errors(client: httpx.AsyncClient, form: dict[str, str], error: str) -> None:
    response = await client.post("/token", data={"service": SERVICE, **form})
    assert response.status_code == 400
    assert response.json()["error"] == error


async def test_post_needs_a_service_and_a_form(client: httpx.AsyncClient) -> None:
    form = {"grant_type": "password", "username": "alice", "password": "wonderland"}
    response = await client.post("/token", data=form)
    assert (response.status_code, response.json()["error_description"]) == (
        400,
        "service is required",
    )
    response = await client.post("/token", json={**form, "service": SERVICE})
    assert response.status_code == 400
    response = await client.post(
        "/token",
        content=b"service=registry.test&service=registry.test&grant_type=password",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert "given twice" in response.json()["error_description"]
    response = await client.post(
        "/token",
        content=b"a=" + b"x" * 70000,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.json()["error_description"] == "the form is too large"
    response = await client.post(
        "/token",
        content=b"service=\xff",
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    assert response.status_code == 400


async def test_other_paths_and_methods(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v2/")).status_code == 404
    response = await client.put("/token")
    assert (response.status_code, response.headers["allow"]) == (405, "GET, POST")


async def test_tokens_verify_at_the_token_controller_by_x5c_and_by_kid(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    token = (await get_token(client, "repository:team/app:pull,push")).json()["token"]
    controller = TokenAccessController(
        realm="r",
        service=SERVICE,
        issuer=ISSUER,
        rootcertbundle=str(tmp_path / "keys" / "token-cert.pem"),
    )
    wanted = [Access("repository", "team/app", "push")]
    assert (await controller.authorized(AuthRequest(f"Bearer {token}"), wanted)).user == "alice"
    head, body, signature = token.split(".")
    # The same claims signed by the same key without x5c, as an issuer without a
    # certificate sends them: found by kid.
    key = ensure_signing_key(tmp_path / "keys")
    by_kid = jwt.encode(
        claims_of(token), key.private_key, algorithm="ES256", headers={"kid": key.kid}
    )
    assert (await controller.authorized(AuthRequest(f"Bearer {by_kid}"), wanted)).user == "alice"
    with pytest.raises(Challenge):
        await controller.authorized(AuthRequest(f"Bearer {head}.{body}x.{signature}"), wanted)


async def test_no_credential_or_token_reaches_the_log(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body = (await get_token(client, "repository:team/app:pull", offline_token="true")).json()
    await client.get("/token", headers=basic("alice", "not-the-password"))
    assert "wonderland" not in caplog.text and "not-the-password" not in caplog.text
    assert body["token"] not in caplog.text and body["refresh_token"] not in caplog.text
    assert "token for 'alice': repository:team/app:pull" in caplog.text


async def test_the_lifespan_protocol_is_answered(service: TokenService) -> None:
    sent: list[dict[str, Any]] = []
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await service({"type": "lifespan"}, receive, send)  # type: ignore[arg-type]
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


async def test_users_can_be_shared_with_the_htpasswd_controller(
    htpasswd: Path, tmp_path: Path
) -> None:
    users = HtpasswdUsers(htpasswd)
    app = create_token_service(
        issuer=ISSUER, service=SERVICE, users=users, key_directory=tmp_path / "k"
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://a") as c:
        assert (await c.get("/token", headers=ALICE)).status_code == 200
    assert await users.verify("alice", "wonderland")
    assert users.bcrypt_checks == 1
