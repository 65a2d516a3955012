"""Proof of compatibility: Debian's docker-registry (CNCF Distribution 2.8) trusts our tokens.

The built-in token service runs on a loopback port; the reference registry's `auth.token`
block names it as realm and holds its certificate as `rootcertbundle`. skopeo, given
`--creds`, follows the registry's challenge to our realm and pushes and pulls with our
tokens; a pull-only user cannot push; anonymous gets only what the policy lets anyone
have. Our own token controller, built from the very same `auth.token` block, decides
the same way about the same tokens.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from mirror.auth.access import Access, AuthRequest
from mirror.auth.challenge import Challenge
from mirror.auth.keys import libtrust_key_id
from mirror.auth.policyfile import parse_policy_yaml
from mirror.auth.registry import create_access_controller
from mirror.auth.tokenservice import create_token_service
from tests.support import skopeo
from tests.support.distribution import RegistryProcess, run_reference_registry
from tests.support.images import BuiltImage, build_image, layout_digest
from tests.support.threadserver import serving_in_thread
from tests.support.tokens import Issuer, certificate, rsa_key

pytestmark = pytest.mark.interop
SERVICE = "registry.test"
ISSUER = "mirror-token-service"
POLICY = """
rules:
  - repository: team/**
    allow: {user:alice: [pull, push, delete], user:bob: [pull]}
  - repository: public/**
    allow: {anonymous: [pull], user:alice: [pull, push]}
"""
USERS = {"alice": "wonderland", "bob": "builder"}


@dataclass(frozen=True)
class Setup:
    registry: RegistryProcess
    realm: str
    auth_block: dict[str, str]
    image: BuiltImage
    external: Issuer  # another issuer whose certificate the same bundle holds


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    tmp = tmp_path_factory.mktemp("token-interop")
    htpasswd = tmp / "htpasswd"
    htpasswd.write_text(
        "".join(
            f"{user}:{bcrypt.hashpw(pw.encode(), bcrypt.gensalt(4)).decode()}\n"
            for user, pw in USERS.items()
        )
    )
    service = create_token_service(
        issuer=ISSUER,
        service=SERVICE,
        htpasswd=htpasswd,
        key_directory=tmp / "keys",
        policy=parse_policy_yaml(POLICY.encode()),
    )
    image = build_image(tmp / "layout", layers=(64 * 1024, 300 * 1024), seed="token-interop")
    key = rsa_key()
    external = Issuer(key, [certificate("external issuer", key)], issuer=ISSUER, service=SERVICE)
    bundle = tmp / "bundle.pem"
    bundle.write_bytes((tmp / "keys" / "token-cert.pem").read_bytes())
    with bundle.open("ab") as out:
        out.write(external.chain[0].public_bytes(serialization.Encoding.PEM))
    with serving_in_thread(service) as url:
        block = {
            "realm": f"{url}/token",
            "service": SERVICE,
            "issuer": ISSUER,
            "rootcertbundle": str(bundle),
        }
        with run_reference_registry(tmp / "registry", auth={"token": block}) as registry:
            yield Setup(registry, block["realm"], block, image, external)


def creds(user: str) -> list[str]:
    return [f"--creds={user}:{USERS[user]}"]


def push(setup: Setup, repository: str, user: str) -> None:
    skopeo.copy(
        setup.image.source_ref,
        setup.registry.ref(repository, "v1"),
        extra_args=[f"--dest-creds={user}:{USERS[user]}"],
    )


def pull(setup: Setup, repository: str, into: Path, user: str | None) -> str:
    extra = [f"--src-creds={user}:{USERS[user]}"] if user else []
    skopeo.copy(setup.registry.ref(repository, "v1"), f"oci:{into}:v1", extra_args=extra)
    return layout_digest(into, "v1")


def test_the_registry_requires_our_tokens(setup: Setup) -> None:
    response = httpx.get(f"{setup.registry.url}/v2/", timeout=10)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        f'Bearer realm="{setup.realm}",service="{SERVICE}"'
    )


def test_push_and_pull_with_our_tokens(setup: Setup, tmp_path: Path) -> None:
    push(setup, "team/app", "alice")
    assert pull(setup, "team/app", tmp_path / "alice", "alice") == setup.image.digest
    assert pull(setup, "team/app", tmp_path / "bob", "bob") == setup.image.digest


def test_a_pull_only_user_cannot_push(setup: Setup) -> None:
    with pytest.raises(skopeo.SkopeoError) as caught:
        push(setup, "team/bobs", "bob")
    assert "insufficient_scope" in caught.value.stderr


def test_anonymous_gets_only_what_the_policy_gives_anyone(setup: Setup, tmp_path: Path) -> None:
    push(setup, "public/tool", "alice")
    assert pull(setup, "public/tool", tmp_path / "anon", None) == setup.image.digest
    push(setup, "team/private", "alice")
    with pytest.raises(skopeo.SkopeoError):
        pull(setup, "team/private", tmp_path / "nope", None)


def test_wrong_password_gets_no_token(setup: Setup) -> None:
    with pytest.raises(skopeo.SkopeoError):
        skopeo.copy(
            setup.image.source_ref,
            setup.registry.ref("team/app", "v2"),
            extra_args=["--dest-creds=alice:not-her-password"],
        )


@pytest.mark.anyio
async def test_our_controller_decides_like_the_registry_on_the_same_block(setup: Setup) -> None:
    push(setup, "team/same", "alice")
    ours = create_access_controller("token", **setup.auth_block)
    manifest = "/v2/team/same/manifests/v1"
    accept = {"Accept": setup.image.media_type}
    cases = [
        ("alice", "repository:team/same:pull", True),
        ("bob", "repository:team/same:pull", True),
        ("bob", "repository:other/x:pull", False),
    ]
    async with httpx.AsyncClient(timeout=10) as client:
        for user, scope, allowed in cases:
            response = await client.get(
                setup.realm, params={"service": SERVICE, "scope": scope}, auth=(user, USERS[user])
            )
            token = response.json()["token"]
            theirs = await client.get(
                setup.registry.url + manifest,
                headers={**accept, "Authorization": f"Bearer {token}"},
            )
            assert (theirs.status_code == 200) is allowed, theirs.text
            try:
                await ours.authorized(
                    AuthRequest(f"Bearer {token}"), [Access("repository", "team/same", "pull")]
                )
                ours_allowed = True
            except Challenge as challenge:
                ours_allowed = False
                assert theirs.headers["www-authenticate"] == challenge.www_authenticate
            assert ours_allowed is allowed


@pytest.mark.anyio
@pytest.mark.parametrize("how", ["x5c", "libtrust kid"])
async def test_an_external_rs256_issuer_is_trusted_by_both(setup: Setup, how: str) -> None:
    push(setup, "team/external", "alice")
    access = [("repository", "team/external", ["pull"])]
    if how == "x5c":
        token = setup.external.token(access)
    else:  # registry:2.x names bundle keys by their libtrust key ID
        kid = libtrust_key_id(setup.external.key.public_key())
        token = setup.external.token(access, how="none", headers={"kid": kid})
    async with httpx.AsyncClient(timeout=10) as client:
        theirs = await client.get(
            setup.registry.url + "/v2/team/external/manifests/v1",
            headers={"Accept": setup.image.media_type, "Authorization": f"Bearer {token}"},
        )
    assert theirs.status_code == 200, theirs.text
    ours = create_access_controller("token", **setup.auth_block)
    wanted = [Access("repository", "team/external", "pull")]
    assert (await ours.authorized(AuthRequest(f"Bearer {token}"), wanted)).user == "alice"
