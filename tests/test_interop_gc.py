"""Garbage collection across implementations, on one storage root in the shared layout.

- A store built by Debian's `docker-registry` (CNCF Distribution 2.8) through skopeo is
  collected by `mirror garbage-collect --delete-untagged`; the reference then still
  serves every kept image byte-identical, multi-arch children included (registry:2's own
  `--delete-untagged` deletes those: distribution#3178).
- A store built by `mirror serve` is collected by `docker-registry garbage-collect`;
  mirror then still serves every image and its referrers.

Each registry is stopped while the other side's collector runs (registry:2 keeps blob
descriptors in memory and would not notice).
"""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from tests.support import skopeo
from tests.support.binaries import require_binary
from tests.support.distribution import RegistryProcess, run_reference_registry, write_config
from tests.support.fsck import assert_layout_has_image, check_registry, scan_blob_store
from tests.support.images import BuiltImage, build_image, build_index
from tests.support.mirrorproc import run_mirror
from tests.support.oci import push_blob, push_image

pytestmark = [pytest.mark.interop, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent


def push(image: BuiltImage, registry: RegistryProcess, repository: str, tag: str) -> None:
    skopeo.copy(image.source_ref, registry.ref(repository, tag), all_images=bool(image.children))


def pulls_identical(
    registry: RegistryProcess, repository: str, tag: str, image: BuiltImage, out: Path
) -> None:
    many = bool(image.children)
    skopeo.copy(registry.ref(repository, tag), f"oci:{out}:{tag}", all_images=many)
    assert_layout_has_image(out, tag, image)


def mirror_gc(root: Path, tmp_path: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "mirror-gc.yml"
    config.write_text(
        yaml.safe_dump({"version": 0.1, "storage": {"filesystem": {"rootdirectory": str(root)}}})
    )
    return subprocess.run(
        [sys.executable, "-m", "mirror", "garbage-collect", *flags, str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_mirror_collects_a_reference_built_store(tmp_path: Path) -> None:
    images = tmp_path / "images"
    keep = build_image(images / "keep", layers=[3000, 2000], seed="keep", tag="v1")
    multi = build_index(images / "multi", seed="multi", tag="v1")
    old = build_image(images / "old", layers=[2500], seed="old", tag="latest")
    new = build_image(images / "new", layers=[2600], seed="new", tag="latest")
    gone = build_image(images / "gone", layers=[1500], seed="gone", tag="v1")
    registry_dir = tmp_path / "reference"
    with run_reference_registry(registry_dir) as registry:
        push(keep, registry, "gc/keep", "v1")
        push(multi, registry, "gc/multi", "v1")
        push(old, registry, "gc/app", "latest")
        push(new, registry, "gc/app", "latest")  # `old` is now untagged
        # Deleted by digest; its repository keeps another tag (registry:2 lists a
        # repository without tags as `"tags": null`, which is not what this tests).
        push(gone, registry, "gc/keep", "gone")
        deleted = httpx.delete(
            f"{registry.url}/v2/gc/keep/manifests/{gone.digest}", trust_env=False
        )
        assert deleted.status_code == 202, deleted.text
        root = registry.root
    before = scan_blob_store(root).blobs
    result = mirror_gc(root, tmp_path, "--delete-untagged")
    assert result.returncode == 0, result.stderr
    assert "gc/multi: marking manifest" in result.stdout
    assert f"manifest eligible for deletion: gc/app@{old.digest}" in result.stdout
    assert result.stdout.rstrip().splitlines()[-1].startswith("garbage-collect: removed ")
    after = scan_blob_store(root)
    assert after.problems == []
    removed = set(before) - set(after.blobs)
    assert removed == {old.digest, gone.digest} | {b.digest for b in old.blobs + gone.blobs}
    with run_reference_registry(registry_dir) as registry:
        pulls_identical(registry, "gc/keep", "v1", keep, tmp_path / "pulled-keep")
        pulls_identical(registry, "gc/multi", "v1", multi, tmp_path / "pulled-multi")
        pulls_identical(registry, "gc/app", "latest", new, tmp_path / "pulled-new")
        check_registry(registry.url).assert_clean()
        untagged = httpx.get(f"{registry.url}/v2/gc/app/manifests/{old.digest}", trust_env=False)
        assert untagged.status_code == 404


def test_the_reference_collects_a_mirror_built_store(tmp_path: Path) -> None:
    require_binary("docker-registry")
    images = tmp_path / "images"
    keep = build_image(images / "keep", layers=[3000, 2000], seed="keep", tag="v1")
    multi = build_index(images / "multi", seed="multi", tag="v1")
    root = tmp_path / "mirror-root"
    orphan = b"uploaded, never referenced" * 40
    with run_mirror(tmp_path, root=root, name="before") as mirror:
        push(keep, mirror, "gc/keep", "v1")
        push(multi, mirror, "gc/multi", "v1")
        subject = {"mediaType": keep.media_type, "digest": keep.digest, "size": keep.size}

        async def artifacts() -> str:
            async with httpx.AsyncClient(base_url=mirror.url, trust_env=False) as client:
                await push_blob(client, "gc/keep", orphan)
                _, digest = await push_image(
                    client, "gc/keep", "sig", seed=9, subject=subject, artifact_type="x/sig"
                )
                return digest

        signature = asyncio.run(artifacts())
    config = write_config(tmp_path / "reference-gc.yml", root=root, port=5000)
    result = subprocess.run(
        [require_binary("docker-registry"), "garbage-collect", str(config)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert " 1 blobs and 0 manifests eligible for deletion" in result.stdout
    with run_mirror(tmp_path, root=root, name="after") as mirror:
        pulls_identical(mirror, "gc/keep", "v1", keep, tmp_path / "pulled-keep")
        pulls_identical(mirror, "gc/multi", "v1", multi, tmp_path / "pulled-multi")
        check_registry(mirror.url).assert_clean()
        referrers = httpx.get(
            f"{mirror.url}/v2/gc/keep/referrers/{keep.digest}", trust_env=False
        ).json()
        assert [m["digest"] for m in referrers["manifests"]] == [signature]
        orphan_digest = "sha256:" + hashlib.sha256(orphan).hexdigest()
        gone = httpx.head(f"{mirror.url}/v2/gc/keep/blobs/{orphan_digest}", trust_env=False)
        assert gone.status_code == 404
