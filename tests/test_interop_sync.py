"""Sync against a real upstream (CNCF Distribution, seeded with skopeo).

What the proof needs: matching tags appear and others do not; an unchanged tag costs the
upstream one HEAD, a moved one one HEAD and one GET (its access log says so); the
background sync of `mirror serve` caches them too, and the mirror then serves them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import skopeo
from tests.support.distribution import RegistryProcess, run_reference_registry, settle_log
from tests.support.images import build_image, build_index, layout_digest
from tests.support.mirrorcli import mirror_cli, stored_tags, tag_target, write_mirror_config
from tests.support.mirrorproc import run_mirror
from tests.support.pullhelpers import log_mark, proxy_settings, requests_since

pytestmark = pytest.mark.interop
REPO = "library/app"
LOCAL = f"docker.io/{REPO}"


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[RegistryProcess]:
    with run_reference_registry(tmp_path / "hub") as registry:
        yield registry


def seed(tmp_path: Path, hub: RegistryProcess, tag: str, *, seed: str) -> str:
    image = build_image(tmp_path / f"src-{seed}", layers=[64 * 1024, 1000], seed=seed, tag=tag)
    skopeo.copy(image.source_ref, hub.ref(REPO, tag))
    return layout_digest(image.layout, tag)


def sync_settings(regex: str, **extra: object) -> dict[str, object]:
    return {
        "content": [{"upstream": "docker.io", "repositories": [REPO], "tags": {"regex": regex}}],
        **extra,
    }


def manifest_requests(hub: RegistryProcess, mark: int, method: str, tag_or_digest: str = "") -> int:
    settle_log(hub.log_path)
    return sum(
        1
        for entry in requests_since(hub, mark)
        if entry.method == method
        and f"/v2/{REPO}/manifests/" in entry.path
        and entry.path.endswith(tag_or_digest)
    )


def test_sync_once_caches_matching_tags_and_refreshes_with_one_head(
    tmp_path: Path, hub: RegistryProcess
) -> None:
    digests = {tag: seed(tmp_path, hub, tag, seed=tag) for tag in ("1.1", "1.2", "2.0", "edge")}
    root = tmp_path / "root"
    config = write_mirror_config(
        tmp_path / "mirror.yml",
        root,
        proxy=proxy_settings(hub.url, freshness="0s"),
        extra={"sync": sync_settings(r"1\..*")},
    )

    done = mirror_cli("sync", "--once", str(config))

    assert done.returncode == 0, done.stderr
    assert "docker.io: 1 repositories, 2 tags (2 new or moved)" in done.stderr
    assert stored_tags(root, LOCAL) == ["1.1", "1.2"]
    assert tag_target(root, LOCAL, "1.1") == digests["1.1"]

    moved = seed(tmp_path, hub, "1.2", seed="1.2-again")
    mark = log_mark(hub)
    done = mirror_cli("sync", "--once", str(config))

    assert done.returncode == 0, done.stderr
    assert "2 tags (1 new or moved)" in done.stderr
    assert tag_target(root, LOCAL, "1.2") == moved
    assert manifest_requests(hub, mark, "HEAD", "/1.1") == 1
    assert manifest_requests(hub, mark, "GET", "/1.1") == 0
    assert manifest_requests(hub, mark, "HEAD", "/1.2") == 1
    assert manifest_requests(hub, mark, "GET") == 1
    assert manifest_requests(hub, mark, "GET", moved) == 1


def test_serve_syncs_in_the_background_and_serves_the_result(
    tmp_path: Path, hub: RegistryProcess
) -> None:
    index = build_index(tmp_path / "multi", layers=[32 * 1024], seed="multi", tag="3")
    skopeo.copy(index.source_ref, hub.ref(REPO, "3"), all_images=True)
    seed(tmp_path, hub, "nightly", seed="nightly")
    sync = sync_settings("3", interval="1h")
    sync["content"][0]["platforms"] = ["linux/arm64"]  # type: ignore[index]

    with run_mirror(
        tmp_path, proxy=proxy_settings(hub.url), extra={"sync": sync}, workers=2
    ) as mirror:
        deadline = time.monotonic() + 60
        while tag_target(mirror.root, LOCAL, "3") is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert tag_target(mirror.root, LOCAL, "3") == index.digest
        arm64 = index.children[1]
        blobs = mirror.root / "docker/registry/v2/blobs/sha256"
        deadline = time.monotonic() + 30
        wanted = [b.hex for b in arm64.blobs]
        while time.monotonic() < deadline and not all(
            (blobs / h[:2] / h / "data").exists() for h in wanted
        ):
            time.sleep(0.2)
        assert all((blobs / h[:2] / h / "data").exists() for h in wanted)
        amd64 = index.children[0]
        assert not any((blobs / b.hex[:2] / b.hex).exists() for b in amd64.blobs)
        assert stored_tags(mirror.root, LOCAL) == ["3"]
        time.sleep(1.0)
        settle_log(hub.log_path)
        # Two workers, one lease: the tag was fetched once.
        heads_or_gets = [
            e
            for e in requests_since(hub, 0)
            if e.path == f"/v2/{REPO}/manifests/3" and e.method in ("HEAD", "GET")
        ]
        assert len(heads_or_gets) == 1, heads_or_gets
        raw = skopeo.inspect(f"docker://{mirror.host}/{REPO}@{arm64.digest}", raw=True)
        assert raw == arm64.manifest
