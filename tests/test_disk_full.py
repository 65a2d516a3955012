"""A push to a full disk gets a clear 507, not `500 UNKNOWN` (issue 8, Low).

The disk is real: `mirror serve` runs in a private mount namespace (``unshare -m``) whose
storage root is a 4 MiB tmpfs, so writes fail with the kernel's own ENOSPC.
"""

from __future__ import annotations

import hashlib
import random
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from tests.support.binaries import require_binary, unavailable
from tests.support.mirrorproc import mirror_config
from tests.support.oci import OCI_MANIFEST as OCI
from tests.support.oci import manifest_bytes
from tests.support.processes import free_port, running

MiB = 1024 * 1024


def digest_of(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def can_mount_tmpfs(unshare: str, where: Path) -> bool:
    probe = f"mount -t tmpfs -o size=1m tmpfs {where} && test -w {where}"
    result = subprocess.run(
        [unshare, "-m", "sh", "-c", probe], capture_output=True, timeout=20, check=False
    )
    return result.returncode == 0


@dataclass
class SmallDisk:
    """A mirror whose storage root is a 4 MiB tmpfs that only its process can see."""

    url: str
    pid: int
    root: Path
    nsenter: str

    def _inside(self, script: str) -> None:
        subprocess.run(
            [self.nsenter, "-t", str(self.pid), "-m", "sh", "-c", script],
            capture_output=True,
            timeout=20,
            check=False,
        )

    def fill(self) -> None:
        """Take every last byte of the disk (dd stops at ENOSPC, keeping what it wrote)."""
        self._inside(f"dd if=/dev/zero of={self.root}/filler bs=64k; sync")

    def free(self) -> None:
        self._inside(f"rm -f {self.root}/filler")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    unshare, nsenter = require_binary("unshare"), require_binary("nsenter")
    root = tmp_path / "small-disk"
    root.mkdir()
    if not can_mount_tmpfs(unshare, root):
        unavailable("cannot mount a tmpfs in a private mount namespace (needs root or userns)")
    port = free_port()
    config = tmp_path / "config.yml"
    config.write_text(yaml.safe_dump(mirror_config(root, port)))
    serve = f"{sys.executable} -m mirror serve --config {config}"
    script = f"mount -t tmpfs -o size=4m tmpfs {root} && exec {serve}"
    url = f"http://127.0.0.1:{port}"
    with running(
        [unshare, "-m", "sh", "-c", script],
        log_path=tmp_path / "mirror.log",
        ready_url=f"{url}/v2/",
        start_timeout=20,
    ) as proc:
        yield SmallDisk(url, proc.pid, root, nsenter)


def client_of(disk: SmallDisk) -> httpx.Client:
    return httpx.Client(base_url=disk.url, timeout=30, trust_env=False)


def test_a_push_larger_than_the_free_space_gets_507(small_disk: SmallDisk) -> None:
    big = random.Random(5).randbytes(8 * MiB)
    with client_of(small_disk) as client:
        r = client.post("/v2/full/blobs/uploads/", params={"digest": digest_of(big)}, content=big)
        assert r.status_code == 507, r.text
        error = r.json()["errors"][0]
        assert error["code"] == "UNAVAILABLE"
        assert "storage is full" in error["message"]
        started = client.post("/v2/full/blobs/uploads/")
        assert started.status_code == 202
        location = httpx.URL(started.headers["location"]).path
        r = client.patch(location, content=big)
        assert r.status_code == 507, r.text
        # The failed chunk was rolled back: the space is free again, pushes that fit work.
        assert client.get(location).headers["range"] == "0-0"
        small = random.Random(6).randbytes(MiB)
        r = client.put(location, params={"digest": digest_of(small)}, content=small)
        assert r.status_code == 201, r.text
        assert client.get(f"/v2/full/blobs/{digest_of(small)}").content == small
        assert 'status="500"' not in client.get("/metrics").text


def test_every_write_to_a_full_disk_gets_507_until_space_is_freed(
    small_disk: SmallDisk,
) -> None:
    config = b'{"architecture": "amd64", "os": "linux"}'
    manifest = manifest_bytes(config, [])
    with client_of(small_disk) as client:
        started = client.post("/v2/full/blobs/uploads/")
        location = httpx.URL(started.headers["location"]).path
        small_disk.fill()
        refused = {
            "start": client.post("/v2/full/blobs/uploads/"),
            "monolithic": client.post(
                "/v2/full/blobs/uploads/", params={"digest": digest_of(config)}, content=config
            ),
            "chunk": client.patch(location, content=config),
            "finish": client.put(location, params={"digest": digest_of(config)}, content=config),
        }
        for what, r in refused.items():
            assert r.status_code == 507, (what, r.text)
        small_disk.free()
        r = client.put(location, params={"digest": digest_of(config)}, content=config)
        assert r.status_code == 201, r.text
        small_disk.fill()
        r = client.put("/v2/full/manifests/v1", content=manifest, headers={"content-type": OCI})
        assert r.status_code == 507, r.text
        small_disk.free()
        r = client.put("/v2/full/manifests/v1", content=manifest, headers={"content-type": OCI})
        assert r.status_code == 201, r.text
        assert 'status="500"' not in client.get("/metrics").text
