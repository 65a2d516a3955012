"""Token auth wired into the app: the built-in token service on its own port, an
external issuer's tokens, and the bad-input list of issue 9 against the whole app (401
with the OCI envelope, never a 500, never access)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.authregistry import PASSWORDS, auth_registry, basic, write_htpasswd
from tests.support.oci import push_image
from tests.support.processes import free_port
from tests.support.tokens import ISSUER, SERVICE, Issuer, certificate, rsa_key, write_bundle
from tests.test_auth_bad_input import MALFORMED_HEADERS, TOKEN_CASES, Forger

pytestmark = pytest.mark.anyio

POLICY = {
    "rules": [
        {"repository": "team/**", "allow": {"user:alice": ["*"], "user:bob": ["pull"]}},
        {"repository": "public/**", "allow": {"anonymous": ["pull"], "user:alice": ["*"]}},
    ]
}


async def token_for(realm: str, scope: str, user: str | None = None) -> str:
    auth = (user, PASSWORDS[user]) if user else None
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(realm, params={"service": SERVICE, "scope": scope}, auth=auth)
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token


async def wait_serving(url: str) -> None:
    deadline = time.monotonic() + 10
    async with httpx.AsyncClient(timeout=2) as client:
        while True:
            try:
                await client.get(url)
                return
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_the_built_in_token_service_is_served_and_trusted(tmp_path: Path) -> None:
    port = free_port()
    realm = f"http://127.0.0.1:{port}/token"
    auth: dict[str, Any] = {
        "token": {"realm": realm, "service": SERVICE, "issuer": ISSUER},
        "tokenservice": {
            "addr": f"127.0.0.1:{port}",
            "htpasswd": str(write_htpasswd(tmp_path / "htpasswd")),
        },
        "policy": POLICY,
    }
    async with auth_registry(tmp_path / "root", auth) as registry:
        await wait_serving(realm)
        client = registry.client
        base = await client.get("/v2/")
        assert base.status_code == 401
        assert base.headers["www-authenticate"] == f'Bearer realm="{realm}",service="{SERVICE}"'
        challenge = await client.get("/v2/team/app/manifests/v1")
        assert challenge.headers["www-authenticate"] == (
            f'Bearer realm="{realm}",service="{SERVICE}",scope="repository:team/app:pull"'
        )
        alice = await token_for(realm, "repository:team/app:pull,push", "alice")
        client.headers.update(bearer(alice))
        await push_image(client, "team/app", "v1", layers=1)
        assert (await client.get("/v2/team/app/manifests/v1")).status_code == 200
        # bob's token holds pull only: his push is refused with insufficient_scope.
        bob = await token_for(realm, "repository:team/app:pull,push", "bob")
        client.headers.update(bearer(bob))
        assert (await client.get("/v2/team/app/manifests/v1")).status_code == 200
        refused = await client.post("/v2/team/app/blobs/uploads/")
        assert refused.status_code == 401
        assert 'error="insufficient_scope"' in refused.headers["www-authenticate"]
        assert refused.json()["errors"][0]["detail"] == [
            {"Type": "repository", "Name": "team/app", "Action": "push"}
        ]
        # Anonymous tokens: public/ only.
        anonymous = await token_for(realm, "repository:team/app:pull")
        client.headers.update(bearer(anonymous))
        assert (await client.get("/v2/team/app/manifests/v1")).status_code == 401
        # A scope with odd characters gets a token for nothing, never an error.
        odd = await token_for(realm, 'repository:te"am/\u2603\x00:pull,*,?', "alice")
        client.headers.update(bearer(odd))
        assert (await client.get("/v2/team/app/manifests/v1")).status_code == 401
    # The key was generated once and kept beside the cache's metadata.
    assert (Path(registry.config.cache.directory) / "tokenservice" / "token-key.pem").exists()


@pytest.fixture
def external(tmp_path: Path) -> tuple[Issuer, dict[str, Any]]:
    key = rsa_key()
    issuer = Issuer(key, [certificate("issuer", key)])
    bundle = write_bundle(tmp_path / "bundle.pem", issuer.chain[0])
    block = {
        "realm": "https://auth.test/token",
        "service": SERVICE,
        "issuer": ISSUER,
        "rootcertbundle": str(bundle),
    }
    return issuer, {"token": block}


async def test_bad_input_is_a_401_with_the_oci_body(
    tmp_path: Path, external: tuple[Issuer, dict[str, Any]]
) -> None:
    issuer, auth = external
    forger = Forger(issuer)
    htpasswd = {"htpasswd": {"realm": "r", "path": str(write_htpasswd(tmp_path / "htpasswd"))}}
    for index, block in enumerate((auth, htpasswd)):
        async with auth_registry(tmp_path / f"root{index}", block) as registry:
            client = registry.client
            good = bearer(issuer.token([("repository", "team/app", ["pull", "push"])]))
            if index:
                good = basic("alice")
            async with httpx.AsyncClient(
                transport=client._transport, base_url="http://r", headers=good
            ) as pusher:
                await push_image(pusher, "team/app", "v1", layers=1)
            headers = [
                {"Authorization": header} for header in MALFORMED_HEADERS if header.isascii()
            ]
            headers += [bearer(make(forger)) for make in TOKEN_CASES.values()]
            headers.append({"Authorization": "Bearer " + "x" * 64 * 1024})
            for header in headers:
                for path in ("/v2/team/app/manifests/v1", "/v2/"):
                    response = await client.get(path, headers=header)
                    assert response.status_code == 401, (header, response.text)
                    assert response.json()["errors"][0]["code"] == "UNAUTHORIZED"
            odd = await client.get(
                "/v2/team/app/manifests/v1", headers=good, params={"scope": "\x00:\u2603:*"}
            )
            assert odd.status_code == 200
