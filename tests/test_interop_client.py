"""`mirror copy` and the other client verbs against Debian's docker-registry, checked by
skopeo: copies in every direction (registry, OCI directory, OCI archive, the mirror
itself), an index with two platforms, existing blobs skipped, `--platform`, Basic auth
(htpasswd), the token flow, and failures as one line that leave no damaged target."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import httpx
import pytest

from mirror.auth.policyfile import parse_policy_yaml
from mirror.auth.tokenservice import create_token_service
from tests.support import skopeo
from tests.support.distribution import (
    RegistryProcess,
    count_requests,
    run_reference_registry,
    settle_log,
)
from tests.support.images import BuiltImage, build_index, layout_digest
from tests.support.mirrorcli import mirror_cli
from tests.support.mirrorproc import MirrorProcess, run_mirror
from tests.support.threadserver import serving_in_thread

pytestmark = pytest.mark.interop
USERS = {"alice": "wonderland", "bob": "builder"}
POLICY = """
rules:
  - repository: team/**
    allow: {user:alice: [pull, push, delete], user:bob: [pull]}
"""


@dataclass(frozen=True)
class Setup:
    registry: RegistryProcess
    mirror: MirrorProcess
    image: BuiltImage  # a two-platform OCI index
    tmp: Path


def htpasswd(path: Path) -> Path:
    path.write_text(
        "".join(
            f"{user}:{bcrypt.hashpw(pw.encode(), bcrypt.gensalt(4)).decode()}\n"
            for user, pw in USERS.items()
        )
    )
    return path


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    tmp = tmp_path_factory.mktemp("client-interop")
    image = build_index(tmp / "layout", layers=(200_000, 2_500_000), seed="client")
    with (
        run_reference_registry(tmp / "registry") as registry,
        run_mirror(tmp, name="mirror") as mirror,
    ):
        yield Setup(registry, mirror, image, tmp)


def copy(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = mirror_copy(*args, env=env)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return done


def mirror_copy(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    if env is None:
        return mirror_cli("copy", "--insecure", *args)
    return subprocess.run(
        [sys.executable, "-m", "mirror", "copy", "--insecure", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **env},
    )


def raw(ref: str) -> bytes:
    return skopeo.inspect(ref, raw=True)


def assert_whole(image: BuiltImage, ref: str) -> None:
    """skopeo reads the index byte for byte, and each child by its digest."""
    assert raw(ref) == image.manifest
    base = ref.rsplit(":", 1)[0] if ref.startswith("docker://") else None
    for child in image.children:
        if base is not None:
            assert raw(f"{base}@{child.digest}") == child.manifest


def test_copies_in_every_direction(setup: Setup) -> None:
    image, reg, tmp = setup.image, setup.registry, setup.tmp
    copy(f"oci:{image.layout}:latest", reg.ref("team/app", "v1"))
    assert_whole(image, reg.ref("team/app", "v1"))
    # registry -> registry (same registry: blobs mounted)
    done = copy("--json", reg.ref("team/app", "v1"), reg.ref("other/app", "v1"))
    result = json.loads(done.stdout)
    assert result["digest"] == image.digest
    assert result["blobs"]["mounted"] == len(image.blobs)
    assert_whole(image, reg.ref("other/app", "v1"))
    # registry -> oci dir -> oci archive -> registry
    copy(reg.ref("team/app", "v1"), f"oci:{tmp / 'dir'}:keep")
    assert layout_digest(tmp / "dir", "keep") == image.digest
    assert raw(f"oci:{tmp / 'dir'}:keep") == image.manifest
    copy(f"oci:{tmp / 'dir'}:keep", f"oci-archive:{tmp / 'image.tar'}:packed")
    assert raw(f"oci-archive:{tmp / 'image.tar'}:packed") == image.manifest
    copy(f"oci-archive:{tmp / 'image.tar'}:packed", reg.ref("from/archive", "v1"))
    assert_whole(image, reg.ref("from/archive", "v1"))
    # registry -> oci archive -> oci dir
    copy(reg.ref("team/app", "v1"), f"oci-archive:{tmp / 'direct.tar'}:v1")
    assert raw(f"oci-archive:{tmp / 'direct.tar'}:v1") == image.manifest
    copy(f"oci-archive:{tmp / 'direct.tar'}:v1", f"oci:{tmp / 'unpacked'}:v1")
    assert layout_digest(tmp / "unpacked", "v1") == image.digest
    # reference -> mirror -> reference, and skopeo reads the mirror's copy
    copy(reg.ref("team/app", "v1"), setup.mirror.ref("team/app", "v1"))
    assert_whole(image, setup.mirror.ref("team/app", "v1"))
    copy(setup.mirror.ref("team/app", "v1"), reg.ref("back/app", "v1"))
    assert_whole(image, reg.ref("back/app", "v1"))
    # By digest, to a tag of its own
    copy(f"docker://{reg.host}/team/app@{image.digest}", reg.ref("by/digest", "d"))
    assert raw(reg.ref("by/digest", "d")) == image.manifest


def test_skopeo_written_content_copies_with_its_digest(setup: Setup) -> None:
    reg = setup.registry
    skopeo.copy(setup.image.source_ref, reg.ref("skopeo/app", "v1"), all_images=True)
    copy(reg.ref("skopeo/app", "v1"), setup.mirror.ref("skopeo/app", "v1"))
    assert raw(setup.mirror.ref("skopeo/app", "v1")) == setup.image.manifest


def test_blobs_the_destination_has_are_skipped(setup: Setup) -> None:
    reg = setup.registry
    copy(f"oci:{setup.image.layout}:latest", reg.ref("skip/app", "v1"))
    settle_log(reg.log_path)
    before = count_requests(reg.log_path, "PATCH") + count_requests(reg.log_path, "POST")
    done = copy("--json", f"oci:{setup.image.layout}:latest", reg.ref("skip/app", "v2"))
    result = json.loads(done.stdout)
    assert result["blobs"]["present"] == len(setup.image.blobs)
    assert result["blobs"]["uploaded"] == 0 and result["bytes"] == 0
    settle_log(reg.log_path)
    after = count_requests(reg.log_path, "PATCH") + count_requests(reg.log_path, "POST")
    assert after == before
    assert raw(reg.ref("skip/app", "v2")) == setup.image.manifest


def test_one_platform_of_an_index(setup: Setup) -> None:
    reg = setup.registry
    arm = setup.image.children[1]
    done = copy("--platform", "linux/arm64", f"oci:{setup.image.layout}:latest", reg.ref("arm/app"))
    assert arm.digest in done.stderr and "digest" in done.stderr
    assert raw(reg.ref("arm/app", "latest")) == arm.manifest
    failed = mirror_copy("--platform", "windows/amd64", f"oci:{setup.image.layout}", reg.ref("x/y"))
    assert failed.returncode == 1 and "no windows/amd64 image" in failed.stderr


def test_the_other_verbs(setup: Setup) -> None:
    reg, image = setup.registry, setup.image
    copy(f"oci:{image.layout}:latest", reg.ref("verbs/app", "v1"))

    def verb(*args: str) -> str:
        done = mirror_cli(*args[:1], "--insecure", *args[1:])
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert verb("digest", f"{reg.host}/verbs/app:v1").strip() == image.digest
    verb("tag", f"{reg.host}/verbs/app:v1", "v2")
    assert verb("ls", f"{reg.host}/verbs/app").split() == ["v1", "v2"]
    assert "verbs/app" in json.loads(verb("catalog", "--json", reg.host))["repositories"]
    inspected = json.loads(verb("inspect", "--json", f"{reg.host}/verbs/app:v2"))
    assert inspected["digest"] == image.digest
    assert [p["platform"] for p in inspected["platforms"]] == ["linux/amd64", "linux/arm64/v8"]
    child = json.loads(
        verb("inspect", "--json", f"{reg.host}/verbs/app@{image.children[0].digest}")
    )
    assert child["config"]["architecture"] == "amd64"
    assert len(child["layers"]) == 2
    assert verb("inspect", "--raw", f"{reg.host}/verbs/app:v1").encode() == image.manifest
    verb("delete", f"{reg.host}/verbs/app:v2")
    assert verb("ls", f"{reg.host}/verbs/app").split() == []


def test_failures_are_one_line(setup: Setup) -> None:
    reg = setup.registry
    cases = [
        (["digest", "--insecure", f"{reg.host}/nothing/here:v1"], "not found"),
        (["ls", "--insecure", f"{reg.host}/nothing/here"], "not found"),
        (["digest", f"{reg.host}/team/app:v1"], "network"),  # plain HTTP without --insecure
        (["copy", "--insecure", "oci:/nonexistent:x", reg.ref("a/b")], "not an OCI image layout"),
        (["copy", "--insecure", "nonsense", reg.ref("a/b")], "is not docker://"),
    ]
    for args, expected in cases:
        done = mirror_cli(*args)
        assert done.returncode != 0, args
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], done.stderr
        assert lines[0].startswith(f"mirror: {args[0]}: ")


def test_a_corrupt_source_blob_leaves_no_target(setup: Setup, tmp_path: Path) -> None:
    layout = tmp_path / "bad"
    image = build_index(layout, layers=(50_000,), seed="corrupt")
    victim = image.children[0].layers[0].path
    data = bytearray(victim.read_bytes())
    data[100] ^= 0xFF
    victim.write_bytes(bytes(data))
    done = mirror_copy(f"oci:{layout}:latest", f"oci:{tmp_path / 'out'}:x")
    assert done.returncode == 1 and "digest mismatch" in done.stderr, done.stderr
    out = tmp_path / "out"
    assert not (out / "index.json").exists()
    assert not [p for p in out.rglob("*") if p.is_file() and p.name.endswith(".partial")]
    done = mirror_copy(f"oci:{layout}:latest", setup.registry.ref("corrupt/app", "v1"))
    assert done.returncode == 1 and "digest mismatch" in done.stderr, done.stderr
    assert mirror_cli("digest", "--insecure", f"{setup.registry.host}/corrupt/app:v1").returncode


def test_a_killed_copy_names_nothing_and_a_rerun_finishes(setup: Setup, tmp_path: Path) -> None:
    layout = tmp_path / "big"
    image = build_index(layout, layers=(40 << 20,), seed="killed")
    copy(f"oci:{layout}:latest", setup.registry.ref("big/app", "v1"))
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mirror",
            "copy",
            "--insecure",
            "-j",
            "1",
            setup.registry.ref("big/app", "v1"),
            f"oci:{out}:v1",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not any(p.name.endswith(".partial") for p in out.rglob("*")):
            assert proc.poll() is None and time.monotonic() < deadline, "copy ended too soon"
            time.sleep(0.01)
        proc.kill()
    finally:
        proc.wait(10)
    assert not (out / "index.json").exists()
    copy(setup.registry.ref("big/app", "v1"), f"oci:{out}:v1")
    assert layout_digest(out, "v1") == image.digest
    assert raw(f"oci:{out}:v1") == image.manifest


def skopeo_reads(ref: str, creds: str, out: Path, digest: str) -> None:
    """skopeo, logged in with `creds`, copies `ref` to a layout with `digest`."""
    skopeo.copy(ref, f"oci:{out}:v1", extra_args=[f"--src-creds={creds}"], all_images=True)
    assert layout_digest(out, "v1") == digest


def test_basic_auth_from_flags_and_docker_config(setup: Setup, tmp_path: Path) -> None:
    auth = {"htpasswd": {"realm": "basic-realm", "path": str(htpasswd(tmp_path / "htpasswd"))}}
    source = f"oci:{setup.image.layout}:latest"
    with run_reference_registry(tmp_path / "reg", auth=auth) as reg:
        anonymous = mirror_copy(source, reg.ref("team/app", "v1"))
        assert anonymous.returncode == 1 and "unauthorized" in anonymous.stderr
        wrong = mirror_copy("--dest-creds", "alice:nope", source, reg.ref("team/app", "v1"))
        assert wrong.returncode == 1 and "unauthorized" in wrong.stderr
        copy("--dest-creds", "alice:wonderland", source, reg.ref("team/app", "v1"))
        config = tmp_path / "docker"
        config.mkdir()
        token = "Ym9iOmJ1aWxkZXI="  # bob:builder
        (config / "config.json").write_text(json.dumps({"auths": {reg.host: {"auth": token}}}))
        copy(
            reg.ref("team/app", "v1"),
            f"oci:{tmp_path / 'out'}:v1",
            env={"DOCKER_CONFIG": str(config)},
        )
        assert layout_digest(tmp_path / "out", "v1") == setup.image.digest
        skopeo_reads(
            reg.ref("team/app", "v1"), "alice:wonderland", tmp_path / "check", setup.image.digest
        )


@contextmanager
def token_registry(tmp_path: Path) -> Iterator[tuple[RegistryProcess, str]]:
    """docker-registry behind the mirror's token service (POLICY's users); and its URL."""
    service = create_token_service(
        issuer="mirror-token-service",
        service="registry.test",
        htpasswd=htpasswd(tmp_path / "htpasswd"),
        key_directory=tmp_path / "keys",
        policy=parse_policy_yaml(POLICY.encode()),
    )
    with serving_in_thread(service) as url:
        block = {
            "realm": f"{url}/token",
            "service": "registry.test",
            "issuer": "mirror-token-service",
            "rootcertbundle": str(tmp_path / "keys" / "token-cert.pem"),
        }
        with run_reference_registry(tmp_path / "reg", auth={"token": block}) as reg:
            yield reg, url


def test_the_token_flow(setup: Setup, tmp_path: Path) -> None:
    with token_registry(tmp_path) as (reg, _):
        source = f"oci:{setup.image.layout}:latest"
        copy("--dest-creds", "alice:wonderland", source, reg.ref("team/app", "v1"))
        copy("--creds", "alice:wonderland", reg.ref("team/app", "v1"), reg.ref("team/copy", "v1"))
        denied = mirror_copy("--dest-creds", "bob:builder", source, reg.ref("team/bobs", "v1"))
        assert denied.returncode == 1 and "unauthorized" in denied.stderr, denied.stderr
        listed = mirror_cli("ls", "--insecure", "--creds", "bob:builder", f"{reg.host}/team/copy")
        assert listed.stdout.split() == ["v1"], listed.stderr
        skopeo_reads(
            reg.ref("team/copy", "v1"), "bob:builder", tmp_path / "check", setup.image.digest
        )


def test_an_identity_token_from_the_docker_config(setup: Setup, tmp_path: Path) -> None:
    """`docker login` against an OAuth token server keeps a refresh token
    (`identitytoken`); the copy trades it for access tokens (the refresh_token grant)."""
    config = tmp_path / "docker"
    config.mkdir()
    with token_registry(tmp_path) as (reg, url):
        offline = httpx.get(
            f"{url}/token",
            params={"service": "registry.test", "offline_token": "true", "client_id": "t"},
            auth=("alice", USERS["alice"]),
        )
        refresh = offline.json()["refresh_token"]
        entry = {"auth": base64.b64encode(b"alice:").decode(), "identitytoken": refresh}
        (config / "config.json").write_text(json.dumps({"auths": {reg.host: entry}}))
        env = {"DOCKER_CONFIG": str(config)}
        source = f"oci:{setup.image.layout}:latest"
        copy(source, reg.ref("team/app", "v1"), env=env)
        skopeo_reads(
            reg.ref("team/app", "v1"), "alice:wonderland", tmp_path / "check", setup.image.digest
        )
        entry["identitytoken"] = "not-a-refresh-token"
        (config / "config.json").write_text(json.dumps({"auths": {reg.host: entry}}))
        refused = mirror_copy(source, reg.ref("team/other", "v1"), env=env)
        assert refused.returncode == 1 and "unauthorized" in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr


def test_docker_media_keep_their_digests_through_a_layout(setup: Setup, tmp_path: Path) -> None:
    image = build_index(tmp_path / "docker", layers=(30_000,), seed="docker-media", media="docker")
    reg = setup.registry
    skopeo.copy(image.source_ref, reg.ref("docker/app", "v1"), all_images=True)
    assert raw(reg.ref("docker/app", "v1")) == image.manifest
    copy(reg.ref("docker/app", "v1"), f"oci:{tmp_path / 'out'}:v1")
    assert layout_digest(tmp_path / "out", "v1") == image.digest
    copy(f"oci:{tmp_path / 'out'}:v1", reg.ref("docker/back", "v1"))
    assert_whole(image, reg.ref("docker/back", "v1"))
