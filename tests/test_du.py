"""The usage report: `usage()` for a dashboard and `mirror du [--json]` (issue 12)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

from mirror.coordination.accesslog import MetadataAccessLog
from mirror.coordination.metadata import MemoryMetadataStore
from mirror.digests import Digest
from mirror.lifecycle.usage import usage
from mirror.store.drivers import create_driver
from mirror.store.store import Store
from tests.support.gcstores import StoredImage, add_image
from tests.support.oci import random_bytes
from tests.test_server import clean_env

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parent.parent
SHARED = random_bytes(5000, 1)


def origin_of(name: str) -> str | None:
    return name.split("/", 1)[0] if name.startswith(("docker.io/", "ghcr.io/")) else None


@dataclass
class Built:
    store: Store
    hub: StoredImage
    ghcr: StoredImage


async def build(root: Path) -> Built:
    store = Store(create_driver("filesystem", {"rootdirectory": str(root)}))
    await add_image(store, "team/app", "v1", seed=1, layers=1, shared=(SHARED,))
    hub = await add_image(store, "docker.io/library/a", "1", seed=2, layers=1, shared=(SHARED,))
    ghcr = await add_image(store, "ghcr.io/org/b", "1", seed=3, layers=2)
    return Built(store, hub, ghcr)


def size(root: Path, digests: Iterable[Digest]) -> int:
    base = root / "docker/registry/v2/blobs/sha256"
    return sum((base / d.hex[:2] / d.hex / "data").stat().st_size for d in digests)


def du(*args: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "mirror", "du", *args],
        cwd=ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout


async def test_unique_shared_local_and_cached_bytes_and_last_use(tmp_path: Path) -> None:
    root = tmp_path / "root"
    built = await build(root)
    log = MetadataAccessLog(MemoryMetadataStore())
    log.record([built.hub.digest])
    report = await usage(built.store.driver, origin_of, log)
    by_name = {r.name: r for r in report.repositories}
    assert list(by_name) == ["docker.io/library/a", "ghcr.io/org/b", "team/app"]
    app, a, b = by_name["team/app"], by_name["docker.io/library/a"], by_name["ghcr.io/org/b"]
    assert (app.origin, a.origin, b.origin) == (None, "docker.io", "ghcr.io")
    assert app.shared_bytes == a.shared_bytes == len(SHARED)
    assert b.shared_bytes == 0 and b.unique_bytes == b.bytes
    assert b.bytes == size(root, built.ghcr.all_blobs)
    assert report.local == app.bytes
    assert report.cached == {"docker.io": a.unique_bytes, "ghcr.io": b.bytes}
    assert report.total == app.bytes + a.unique_bytes + b.bytes
    assert a.last_used is not None and abs(a.last_used - time.time()) < 60
    assert (a.tags, a.images) == (1, 1)


def test_mirror_du_prints_a_table_and_json(tmp_path: Path) -> None:
    root = tmp_path / "root"
    asyncio.run(build(root))
    config = tmp_path / "config.yml"
    config.write_text(
        f"storage:\n  filesystem:\n    rootdirectory: {root}\n"
        "proxy:\n  remoteurl: https://registry-1.docker.io\n"
        "  upstreams: [{name: ghcr.io, remoteurl: 'https://ghcr.io'}]\n"
    )
    table = du(str(config)).splitlines()
    assert table[0].split()[:3] == ["REPOSITORY", "KIND", "IMAGES"]
    assert any(line.startswith("team/app") and " local " in line for line in table)
    assert any("cache:ghcr.io" in line for line in table)
    assert table[-1].startswith("total: ")
    doc = json.loads(du("--json", "--config", str(config)))
    assert set(doc["cached"]) == {"docker.io", "ghcr.io"}
    names = {r["name"] for r in doc["repositories"]}
    assert names == {"team/app", "docker.io/library/a", "ghcr.io/org/b"}
