"""Real clients against `mirror serve` with access control.

- htpasswd: skopeo with `--creds` and with an auth file pushes and pulls; a pull-only
  user cannot push; anonymous cannot read a protected repository.
- the token flow: mirror's own token service (on its own port, started by `mirror serve`)
  and an external RS256 issuer the test starts, its tokens found by `x5c` and by `kid`.
- containerd: `ctr image pull --user` through hosts.toml (`?ns=`), against a mirror whose
  upstream content needs a login.
- the reference registry (`docker-registry`) with the same `auth.token` block accepts the
  tokens of mirror's token service.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from mirror.auth.policyfile import parse_policy
from mirror.auth.tokenservice import create_token_service, load_signing_key
from mirror.auth.tokenservice.signing import CERT_FILE
from tests.support import skopeo
from tests.support.authregistry import PASSWORDS, write_htpasswd
from tests.support.binaries import require_root
from tests.support.containerd import CtrError, run_containerd, write_hosts_toml
from tests.support.distribution import RegistryProcess, run_reference_registry
from tests.support.images import BuiltImage, build_image, layout_digest
from tests.support.mirrorproc import run_mirror
from tests.support.processes import free_port, wait_for_http
from tests.support.pullhelpers import proxy_settings
from tests.support.threadserver import serving_in_thread
from tests.support.tokens import certificate, rsa_key

pytestmark = pytest.mark.interop
SERVICE = "mirror.test"
ISSUER = "mirror-issuer"
POLICY = {
    "rules": [
        {"repository": "team/**", "allow": {"user:alice": ["*"], "user:bob": ["pull"]}},
        {"repository": "public/**", "allow": {"anonymous": ["pull"], "user:alice": ["*"]}},
    ]
}


def creds(user: str) -> str:
    return f"{user}:{PASSWORDS[user]}"


def push(image: BuiltImage, registry: RegistryProcess, repository: str, user: str) -> None:
    skopeo.copy(
        image.source_ref, registry.ref(repository, "v1"), extra_args=[f"--dest-creds={creds(user)}"]
    )


def pull(registry: RegistryProcess, repository: str, into: Path, *extra: str) -> str:
    skopeo.copy(registry.ref(repository, "v1"), f"oci:{into}:v1", extra_args=list(extra))
    return layout_digest(into, "v1")


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> BuiltImage:
    return build_image(
        tmp_path_factory.mktemp("auth-image") / "layout", layers=(64 * 1024, 200 * 1024)
    )


def check_policy(image: BuiltImage, registry: RegistryProcess, tmp_path: Path) -> None:
    """The same decisions whatever the scheme: the policy above."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    push(image, registry, "team/app", "alice")
    assert pull(registry, "team/app", tmp_path / "bob", f"--src-creds={creds('bob')}") == (
        image.digest
    )
    with pytest.raises(skopeo.SkopeoError):
        push(image, registry, "team/bobs", "bob")
    with pytest.raises(skopeo.SkopeoError):
        pull(registry, "team/app", tmp_path / "anonymous")
    push(image, registry, "public/tool", "alice")
    assert pull(registry, "public/tool", tmp_path / "anon-public") == image.digest


def test_htpasswd_with_creds_and_an_auth_file(image: BuiltImage, tmp_path: Path) -> None:
    htpasswd = write_htpasswd(tmp_path / "htpasswd")
    auth = {"htpasswd": {"realm": "mirror", "path": str(htpasswd)}, "policy": POLICY}
    with run_mirror(tmp_path, extra={"auth": auth}) as registry:
        check_policy(image, registry, tmp_path)
        authfile = tmp_path / "auth.json"
        token = base64.b64encode(creds("bob").encode()).decode()
        authfile.write_text(json.dumps({"auths": {registry.host: {"auth": token}}}))
        digest = pull(registry, "team/app", tmp_path / "authfile", f"--src-authfile={authfile}")
        assert digest == image.digest
        wrong = ["--src-creds=bob:not-his-password"]
        with pytest.raises(skopeo.SkopeoError):
            pull(registry, "team/app", tmp_path / "wrong", *wrong)


@pytest.fixture
def token_mirror(tmp_path: Path) -> Iterator[tuple[RegistryProcess, dict[str, Any]]]:
    port = free_port()
    block = {"realm": f"http://127.0.0.1:{port}/token", "service": SERVICE, "issuer": ISSUER}
    auth = {
        "token": block,
        "tokenservice": {
            "addr": f"127.0.0.1:{port}",
            "htpasswd": str(write_htpasswd(tmp_path / "htpasswd")),
            "keydirectory": str(tmp_path / "keys"),
        },
        "policy": POLICY,
    }
    with run_mirror(tmp_path, extra={"auth": auth}) as registry:
        wait_for_http(block["realm"], 10)
        yield registry, block


def test_the_built_in_token_service(
    image: BuiltImage, tmp_path: Path, token_mirror: tuple[RegistryProcess, dict[str, Any]]
) -> None:
    registry, _ = token_mirror
    check_policy(image, registry, tmp_path)


def test_the_reference_registry_accepts_the_same_tokens(
    image: BuiltImage, tmp_path: Path, token_mirror: tuple[RegistryProcess, dict[str, Any]]
) -> None:
    _, block = token_mirror
    same = {**block, "rootcertbundle": str(tmp_path / "keys" / CERT_FILE)}
    with run_reference_registry(tmp_path / "reference", auth={"token": same}) as reference:
        check_policy(image, reference, tmp_path / "ref")


@pytest.mark.parametrize("how", ["x5c", "kid"])
def test_an_external_rs256_token_service(image: BuiltImage, tmp_path: Path, how: str) -> None:
    key = rsa_key()
    key_path = tmp_path / "external-key.pem"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert = certificate("external issuer", key)
    cert_path = tmp_path / "external-cert.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    service = create_token_service(
        issuer=ISSUER,
        service=SERVICE,
        htpasswd=write_htpasswd(tmp_path / "htpasswd"),
        key_path=key_path,
        certificate_path=cert_path if how == "x5c" else None,
        policy=parse_policy(POLICY),
    )
    block: dict[str, Any] = {"service": SERVICE, "issuer": ISSUER, "signingalgorithms": ["RS256"]}
    if how == "x5c":
        block["rootcertbundle"] = str(cert_path)
    else:  # the token names its key by kid only; the registry has it in a JWK set
        jwks = tmp_path / "jwks.json"
        jwks.write_text(json.dumps(load_signing_key(key_path).jwks()))
        block["jwks"] = str(jwks)
    with serving_in_thread(service) as url:
        auth = {"token": {**block, "realm": f"{url}/token"}}
        with run_mirror(tmp_path, extra={"auth": auth}) as registry:
            check_policy(image, registry, tmp_path)


def test_ctr_user_through_hosts_toml(image: BuiltImage, tmp_path: Path) -> None:
    require_root("containerd")
    with run_reference_registry(tmp_path / "upstream") as upstream:
        skopeo.copy(image.source_ref, upstream.ref("team/app", "v1"))
        htpasswd = write_htpasswd(tmp_path / "htpasswd")
        policy = {"rules": [{"repository": "**", "allow": {"user:bob": ["pull"]}}]}
        auth = {"htpasswd": {"realm": "mirror", "path": str(htpasswd)}, "policy": policy}
        proxy = proxy_settings(upstream.url, name=upstream.host)
        with run_mirror(tmp_path, proxy=proxy, extra={"auth": auth}) as mirror:
            hosts = tmp_path / "hosts"
            # No fallback to the (open) upstream itself: only the mirror serves it.
            dead = f"http://127.0.0.1:{free_port()}"
            write_hosts_toml(hosts, upstream.host, mirror.url, server=dead)
            ref = f"{upstream.host}/team/app:v1"
            pull = ["image", "pull", "--snapshotter", "native", "--hosts-dir", str(hosts)]
            with run_containerd(tmp_path / "containerd") as containerd:
                with pytest.raises(CtrError):
                    containerd.ctr(*pull, ref)
                with pytest.raises(CtrError):
                    containerd.ctr(*pull, "--user", "alice:wonderland", ref)
                containerd.ctr(*pull, "--user", creds("bob"), ref)
                assert image.digest in containerd.content_digests()
