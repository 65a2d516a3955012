"""Image references, copy locations, platforms and docker's credentials file."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from mirror.client.credentials import DOCKER_HUB_KEY, Credentials, lookup
from mirror.client.errors import CredentialsError, PlatformMissing, ReferenceInvalid
from mirror.client.locations import Location
from mirror.client.platforms import parse_platform, pick_platform
from mirror.client.refs import ImageRef
from mirror.digests import Digest
from mirror.types import OCI_INDEX, OCI_MANIFEST, Manifest

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("text", "host", "repository", "tag", "digest"),
    [
        ("alpine", "docker.io", "library/alpine", "latest", None),
        ("docker://alpine:3.19", "docker.io", "library/alpine", "3.19", None),
        ("bitnami/redis:7", "docker.io", "bitnami/redis", "7", None),
        ("localhost/app", "localhost", "app", "latest", None),
        ("[::1]:5000/app", "[::1]:5000", "app", "latest", None),
        ("127.0.0.1:5000/team/app:v1", "127.0.0.1:5000", "team/app", "v1", None),
        (f"ghcr.io/o/r@{DIGEST}", "ghcr.io", "o/r", None, DIGEST),
        (f"ghcr.io/o/r:v2@{DIGEST}", "ghcr.io", "o/r", "v2", DIGEST),
    ],
)
def test_references(
    text: str, host: str, repository: str, tag: str | None, digest: str | None
) -> None:
    ref = ImageRef.parse(text)
    assert (ref.host, ref.repository, ref.tag) == (host, repository, tag)
    assert (str(ref.digest) if ref.digest else None) == digest
    assert ref.reference == (digest or tag)


def test_docker_hub_has_its_own_api_host() -> None:
    assert ImageRef.parse("alpine").api_host == "registry-1.docker.io"
    assert ImageRef.parse("quay.io/a/b").api_host == "quay.io"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "UPPER/case",
        "host:5000/a/b:bad tag",
        "a/b@sha256:short",
        " alpine",
        "a//b",
        "host:abc/a",
        "host:99999/a",
        "bad_host.example/a",
    ],
)
def test_bad_references(text: str) -> None:
    with pytest.raises(ReferenceInvalid):
        ImageRef.parse(text)


def test_locations() -> None:
    docker = Location.parse("docker://h:5000/a/b:v1")
    assert docker.image is not None and docker.tag == "v1"
    assert Location.parse("docker://h:5000/a/b").tag is None
    oci = Location.parse("oci:/tmp/x:docker.io/library/alpine:3.19")
    assert oci.path == Path("/tmp/x") and oci.reference == "docker.io/library/alpine:3.19"
    assert Location.parse("oci-archive:out.tar").reference is None
    assert Location.parse(f"oci:dir:{DIGEST}").tag is None
    for bad in ("h/a/b", "dir:/tmp/x", "oci:", "docker:/a"):
        with pytest.raises(ReferenceInvalid):
            Location.parse(bad)


def index_with(*platforms: dict[str, str]) -> Manifest:
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": str(Digest.of(bytes([i]))),
                "size": 1,
                "platform": p,
            }
            for i, p in enumerate(platforms)
        ],
    }
    return Manifest.parse(json.dumps(doc).encode())


def test_platforms() -> None:
    index = index_with(
        {"os": "linux", "architecture": "amd64"},
        {"os": "linux", "architecture": "arm64", "variant": "v8"},
        {"os": "linux", "architecture": "arm", "variant": "v7"},
    )
    assert pick_platform(index, "linux/amd64") == index.manifests[0]
    assert pick_platform(index, "linux/arm64") == index.manifests[1]
    assert pick_platform(index, "linux/arm64/v8") == index.manifests[1]
    assert pick_platform(index, "linux/arm/v7") == index.manifests[2]
    with pytest.raises(PlatformMissing, match="linux/amd64, linux/arm64/v8"):
        pick_platform(index, "windows/amd64")
    with pytest.raises(PlatformMissing):
        parse_platform("linux")


def write(path: Path, doc: object) -> Path:
    path.write_text(json.dumps(doc))
    return path


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_auths_by_host_with_or_without_scheme(tmp_path: Path) -> None:
    config = write(
        tmp_path / "config.json",
        {
            "auths": {
                "https://registry.example:5000": {"auth": b64("alice:pa:ss")},
                DOCKER_HUB_KEY: {"auth": b64("hub:secret")},
                "plain.example": {"username": "bob", "password": "pw"},
            }
        },
    )
    assert lookup("registry.example:5000", config) == Credentials("alice", "pa:ss")
    assert lookup("docker.io", config) == Credentials("hub", "secret")
    assert lookup("registry-1.docker.io", config) == Credentials("hub", "secret")
    assert lookup("plain.example", config) == Credentials("bob", "pw")
    assert lookup("other.example", config) is None
    assert lookup("x", tmp_path / "missing.json") is None


def test_credential_helpers(tmp_path: Path) -> None:
    asked: list[tuple[list[str], str]] = []

    def runner(command: list[str], stdin: str) -> str | None:
        asked.append((command, stdin))
        if command[0] == "docker-credential-pass" and stdin == "ghcr.io":
            return json.dumps({"ServerURL": stdin, "Username": "gh", "Secret": "tok"})
        if command[0] == "docker-credential-desktop" and stdin == DOCKER_HUB_KEY:
            return json.dumps({"ServerURL": stdin, "Username": "hub", "Secret": "pw"})
        return None

    config = write(
        tmp_path / "config.json",
        {
            "credsStore": "desktop",
            "credHelpers": {"ghcr.io": "pass"},
            "auths": {"quay.io": {"auth": b64("q:w")}},
        },
    )
    assert lookup("ghcr.io", config, runner=runner) == Credentials("gh", "tok")
    assert lookup("docker.io", config, runner=runner) == Credentials("hub", "pw")
    # The store knows nothing of quay.io: the auths entry is used.
    assert lookup("quay.io", config, runner=runner) == Credentials("q", "w")
    assert asked[0] == (["docker-credential-pass", "get"], "ghcr.io")


def test_identity_tokens_from_auths_and_helpers(tmp_path: Path) -> None:
    def runner(command: list[str], stdin: str) -> str | None:
        if stdin == "helped.example":
            return json.dumps({"ServerURL": stdin, "Username": "<token>", "Secret": "rt-h"})
        return None

    config = write(
        tmp_path / "config.json",
        {
            "credHelpers": {"helped.example": "store"},
            "auths": {
                # as docker writes it: the user (no password) in `auth`, beside the token
                "acr.example": {"auth": b64("00000000-0000:"), "identitytoken": "rt-a"},
                "bare.example": {"identitytoken": "rt-b"},
                "named.example": {"username": "carol", "identitytoken": "rt-c"},
            },
        },
    )
    assert lookup("acr.example", config) == Credentials.token("rt-a", "00000000-0000")
    assert lookup("bare.example", config) == Credentials("", "", "rt-b")
    assert lookup("named.example", config) == Credentials.token("rt-c", "carol")
    assert lookup("helped.example", config, runner=runner) == Credentials.token("rt-h")
    assert "rt-a" not in repr(lookup("acr.example", config))


def test_broken_config_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "config.json"
    bad.write_text("{not json")
    with pytest.raises(CredentialsError, match="not JSON"):
        lookup("h", bad)
    with pytest.raises(CredentialsError):
        Credentials.parse("no-colon")
    assert "***" in repr(Credentials("u", "secret")) and "secret" not in repr(
        Credentials("u", "secret")
    )


def test_a_real_helper_program_is_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    helper = tmp_path / "docker-credential-fake"
    helper.write_text(
        "#!/bin/sh\n"
        "read server\n"
        '[ "$1" = get ] && [ "$server" = "reg.example" ] || exit 1\n'
        'echo \'{"ServerURL": "reg.example", "Username": "robot", "Secret": "t0k"}\'\n'
    )
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    config = write(tmp_path / "config.json", {"credHelpers": {"reg.example": "fake"}})
    assert lookup("reg.example", config) == Credentials("robot", "t0k")
    missing = write(tmp_path / "other.json", {"credsStore": "not-installed"})
    with pytest.raises(CredentialsError, match="not installed"):
        lookup("reg.example", missing)
