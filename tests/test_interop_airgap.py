"""The air-gapped round trip, with the real clients.

A mirror pulls images through a real upstream (CNCF Distribution) and takes a push of its
own; its store is exported; the upstream is stopped for good; a fresh instance imports
the archive and serves the images to skopeo and to `ctr image pull` with the same
digests, its tags fresh (no Warning). An import killed half-way is finished by running it
again, and a damaged archive is refused without anything becoming visible.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from mirror.store.drivers import create_driver
from mirror.store.store import Store
from tests.support import skopeo
from tests.support.binaries import require_root
from tests.support.containerd import run_containerd, write_hosts_toml
from tests.support.distribution import run_reference_registry
from tests.support.images import BuiltImage, build_image, build_index
from tests.support.mirrorcli import mirror_cli, stored_tags, tag_target, write_mirror_config
from tests.support.mirrorproc import MirrorProcess, run_mirror
from tests.support.pullhelpers import HTTP_TIMEOUT, MiB, layout_blobs, proxy_settings
from tests.support.storefill import put_image

pytestmark = pytest.mark.interop


def test_export_then_serve_the_import_with_the_upstream_gone(tmp_path: Path) -> None:
    require_root("containerd")
    app = build_image(tmp_path / "app", layers=[2 * MiB, 1000], media="docker", seed="app")
    multi = build_index(tmp_path / "multi", layers=[MiB], seed="multi", tag="2")
    tool = build_image(tmp_path / "tool", layers=[3000], seed="tool", tag="1")
    archive = tmp_path / "site.tar"
    dead_upstream = _pull_through_and_export(tmp_path, archive, app, multi, tool)
    # The upstream is gone; the new site has only the archive.
    offline = proxy_settings(dead_upstream, local=["team"], offline=True)
    config = write_mirror_config(tmp_path / "site.yml", tmp_path / "site-root", proxy=offline)
    done = mirror_cli("import", "--config", str(config), str(archive))
    assert done.returncode == 0, done.stderr
    assert "imported 3 images of 3 repositories" in done.stderr

    with run_mirror(tmp_path, name="site", proxy=offline, root=tmp_path / "site-root") as site:
        _check_skopeo(tmp_path, site, app, multi, tool)
        hosts = tmp_path / "hosts"
        write_hosts_toml(hosts, "docker.io", site.url)
        with run_containerd(tmp_path / "containerd") as containerd:
            containerd.pull("docker.io/library/app:1", hosts_dir=hosts)
            containerd.pull("docker.io/library/multi:2", hosts_dir=hosts, platform="linux/arm64")
            content = containerd.content_digests()
        assert {app.digest, *(b.digest for b in app.blobs)} <= content
        arm64 = multi.children[1]
        assert {multi.digest, arm64.digest, *(b.digest for b in arm64.blobs)} <= content

    # An instance with no upstream at all serves the same names as local repositories.
    plain = write_mirror_config(tmp_path / "plain.yml", tmp_path / "plain-root")
    assert mirror_cli("import", "-q", "--config", str(plain), str(archive)).returncode == 0
    with run_mirror(tmp_path, name="plain", root=tmp_path / "plain-root") as registry:
        ref = f"docker://{registry.host}/docker.io/library/multi:2"
        assert skopeo.inspect(ref, raw=True) == multi.manifest
        ref = f"docker://{registry.host}/docker.io/library/app:1"
        assert skopeo.inspect(ref, raw=True) == app.manifest


def _pull_through_and_export(
    tmp_path: Path, archive: Path, app: BuiltImage, multi: BuiltImage, tool: BuiltImage
) -> str:
    """A connected mirror caches `app` and `multi` (every platform) from a real
    upstream and takes a push of `tool`; its store is exported to `archive`. Returns
    the upstream's URL, which is stopped when this returns."""
    with run_reference_registry(tmp_path / "hub") as hub:
        skopeo.copy(app.source_ref, hub.ref("library/app", "1"))
        skopeo.copy(multi.source_ref, hub.ref("library/multi", "2"), all_images=True)
        proxy = proxy_settings(hub.url, local=["team"])
        with run_mirror(tmp_path, name="connected", proxy=proxy) as connected:
            skopeo.copy(f"docker://{connected.host}/library/app:1", f"oci:{tmp_path / 'p1'}:1")
            skopeo.copy(
                f"docker://{connected.host}/library/multi:2",
                f"oci:{tmp_path / 'p2'}:2",
                all_images=True,
            )
            skopeo.copy(tool.source_ref, f"docker://{connected.host}/team/tool:1")
        done = mirror_cli("export", "--config", str(connected.config_path), "-o", str(archive))
        assert done.returncode == 0, done.stderr
        assert "exported 3 images" in done.stderr
        # Any OCI tool reads it: skopeo's oci-archive transport finds the tag by ref.name.
        ref = f"oci-archive:{archive}:docker.io/library/multi:2"
        assert skopeo.inspect(ref, raw=True) == multi.manifest
        return hub.url


def _check_skopeo(
    tmp_path: Path, site: MirrorProcess, app: BuiltImage, multi: BuiltImage, tool: BuiltImage
) -> None:
    """The offline site serves every image with its digests, its tags as fresh."""
    assert skopeo.inspect(f"docker://{site.host}/library/app:1", raw=True) == app.manifest
    copied = tmp_path / "copied"
    skopeo.copy(f"docker://{site.host}/library/multi:2", f"oci:{copied}:2", all_images=True)
    blobs = layout_blobs(copied)
    assert all(claimed == actual for claimed, actual in blobs.items())
    assert {multi.digest, *(c.digest for c in multi.children)} <= set(blobs)
    assert {b.digest for b in multi.blobs} <= set(blobs)
    assert skopeo.inspect(f"docker://{site.host}/team/tool:1", raw=True) == tool.manifest
    with httpx.Client(base_url=site.url, timeout=HTTP_TIMEOUT, trust_env=False) as client:
        response = client.get("/v2/library/app/manifests/1", headers={"Accept": app.media_type})
    assert response.status_code == 200
    assert response.headers["docker-content-digest"] == app.digest
    assert "warning" not in response.headers  # served as fresh, not stale


def _fill(root: Path) -> None:
    async def put() -> None:
        store = Store(create_driver("filesystem", {"rootdirectory": str(root)}))
        await put_image(
            store, "docker.io/library/big", "1", layers=12, layer_size=16 * MiB, origin="docker.io"
        )

    asyncio.run(put())


def test_a_killed_import_is_finished_by_running_it_again(tmp_path: Path) -> None:
    proxy = proxy_settings("http://127.0.0.1:9", offline=True)
    source = write_mirror_config(tmp_path / "source.yml", tmp_path / "source", proxy=proxy)
    _fill(tmp_path / "source")
    archive = tmp_path / "big.tar"
    assert mirror_cli("export", "--config", str(source), "-o", str(archive)).returncode == 0
    root = tmp_path / "target"
    target = write_mirror_config(tmp_path / "target.yml", root, proxy=proxy)
    blobs = root / "docker/registry/v2/blobs"

    importing = subprocess.Popen(
        [sys.executable, "-m", "mirror", "import", "-q", "--config", str(target), str(archive)],
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and importing.poll() is None:
        if blobs.exists() and sum(1 for _ in blobs.rglob("data")) >= 2:
            break
        time.sleep(0.005)
    assert importing.poll() is None, "the import ended before it could be killed"
    os.kill(importing.pid, signal.SIGKILL)
    importing.wait(10)

    assert stored_tags(root, "docker.io/library/big") == []  # nothing visible
    done = mirror_cli("import", "--config", str(target), str(archive))
    assert done.returncode == 0, done.stderr
    assert "already stored" in done.stderr and " 0 already stored" not in done.stderr
    assert tag_target(root, "docker.io/library/big", "1") is not None


def test_a_damaged_archive_is_refused(tmp_path: Path) -> None:
    proxy = proxy_settings("http://127.0.0.1:9", offline=True)
    source = write_mirror_config(tmp_path / "source.yml", tmp_path / "source", proxy=proxy)
    _fill(tmp_path / "source")
    archive = tmp_path / "big.tar"
    assert mirror_cli("export", "--config", str(source), "-o", str(archive)).returncode == 0
    with archive.open("r+b") as f:
        f.seek(archive.stat().st_size // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0x40]))
    root = tmp_path / "target"
    target = write_mirror_config(tmp_path / "target.yml", root, proxy=proxy)

    done = mirror_cli("import", "--config", str(target), str(archive))

    assert done.returncode == 1
    assert done.stderr.startswith(f"mirror: import failed: {archive} refused: blob sha256:")
    assert "is damaged" in done.stderr and "nothing of it was made visible" in done.stderr
    assert stored_tags(root, "docker.io/library/big") == []
