"""Cached tag lists and catalog stay right when other processes change the store."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from mirror.digests import Digest
from mirror.store import paths
from mirror.store.drivers import create_driver
from mirror.store.store import Store
from mirror.types import Reference
from tests.support.oci import manifest_bytes

pytestmark = pytest.mark.anyio


def stores(root: Path) -> tuple[Store, Store]:
    """Two stores on one root: stand-ins for two processes."""
    return tuple(  # type: ignore[return-value]
        Store(create_driver("filesystem", {"rootdirectory": str(root)})) for _ in range(2)
    )


async def put(store: Store, name: str, tag: str) -> Digest:
    raw = manifest_bytes(b"{}", [], annotations={"tag": tag})
    manifest = await store.repository(name).put_manifest(
        Reference(tag=tag), raw, None, verify=False
    )
    return manifest.digest


def age(path: str, seconds: float) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


async def test_tag_list_cache_sees_other_writers(tmp_path: Path) -> None:
    a, b = stores(tmp_path)
    await put(a, "app", "v1")
    tags_dir = str(tmp_path / paths.tags_dir("app").lstrip("/"))
    age(tags_dir, 10)
    first = await a.repository("app").tags.all()
    assert first == ["v1"]
    assert await a.repository("app").tags.all() is first  # served from the cache
    await put(b, "app", "v2")  # another process: only the directory tells
    assert await a.repository("app").tags.all() == ["v1", "v2"]
    await b.repository("app").tags.untag("v1")
    assert await a.repository("app").tags.all() == ["v2"]


async def test_recently_changed_directories_are_not_cached(tmp_path: Path) -> None:
    a, _ = stores(tmp_path)
    await put(a, "app", "v1")
    first = await a.repository("app").tags.all()
    assert await a.repository("app").tags.all() is not first


async def test_catalog_index_follows_other_processes(tmp_path: Path) -> None:
    a, b = stores(tmp_path)
    await put(a, "one", "v1")
    assert await a.repositories() == ["one"]
    await put(a, "zed/two", "v1")
    assert await a.repositories() == ["one", "zed/two"]  # own creation, no walk needed
    await put(b, "mid", "v1")
    assert await a.repositories() == ["mid", "one", "zed/two"]
    await put(b, "mid", "v2")  # not a new repository: the version stays
    version = (tmp_path / "docker/registry/v2/_mirror/catalog.version").read_bytes()
    await put(a, "one", "v3")
    assert (tmp_path / "docker/registry/v2/_mirror/catalog.version").read_bytes() == version


async def test_catalog_of_a_store_written_by_another_registry(tmp_path: Path) -> None:
    a, _ = stores(tmp_path)
    await put(a, "x/y", "v1")
    (tmp_path / "docker/registry/v2/_mirror/catalog.version").unlink()
    fresh, _ = stores(tmp_path)
    assert await fresh.repositories() == ["x/y"]
