"""Export a store to an archive and import it into another, on both local drivers."""

from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path

import pytest

from mirror.archive.export import covered_by, write_archive
from mirror.archive.format import CONTAINERD_NAME, ORIGIN, REF_NAME, REPOSITORY
from mirror.archive.importer import Importer, ImportResult
from mirror.archive.selection import SelectionError, Wanted, select
from mirror.archive.tarreader import TarReader
from mirror.cache.pullthrough.state import stamp_key
from mirror.coordination.metadata import MemoryMetadataStore
from mirror.digests import Digest
from mirror.store import paths
from mirror.store.drivers import create_driver
from mirror.store.store import Store
from mirror.types import Reference
from tests.support.storefill import put_image, put_index

pytestmark = pytest.mark.anyio


def new_store(driver_name: str, root: Path) -> Store:
    params = {"rootdirectory": str(root)} if driver_name == "filesystem" else {}
    return Store(create_driver(driver_name, params))


def origin_of(name: str) -> str | None:
    first = name.split("/", 1)[0]
    return first if first in ("docker.io", "ghcr.io") else None


async def export_to(
    store: Store, path: Path, wanted: tuple[str, ...] = (), since: set[Digest] | None = None
) -> None:
    selection = await select(store, [Wanted.parse(w) for w in wanted], origin_of)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        await write_archive(store, selection, fd, since=since or set())
    finally:
        os.close(fd)


async def import_from(
    store: Store, path: Path, metadata: MemoryMetadataStore | None = None
) -> ImportResult:
    size = os.stat(path).st_size
    with open(path, "rb") as f:  # noqa: ASYNC230 (a test: blocking is fine)
        return await Importer(store, metadata=metadata).run(TarReader(f, seekable=True), size)


@pytest.fixture
def source(driver_name: str, tmp_path: Path) -> Store:
    return new_store(driver_name, tmp_path / "source")


@pytest.fixture
def target(driver_name: str, tmp_path: Path) -> Store:
    return new_store(driver_name, tmp_path / "target")


async def test_round_trip_keeps_tags_digests_and_origins(
    source: Store, target: Store, tmp_path: Path
) -> None:
    local = await put_image(source, "team/app", "v1", seed=1)
    cached = await put_image(source, "docker.io/library/alpine", "3", seed=2, origin="docker.io")
    index = await put_index(source, "ghcr.io/org/tool", "1.0", seed=3, origin="ghcr.io")
    untagged = await put_image(source, "team/app", None, seed=4)
    archive = tmp_path / "store.tar"
    await export_to(source, archive)

    metadata = MemoryMetadataStore()
    result = await import_from(target, archive, metadata)

    assert result.repositories == 3
    app = target.repository("team/app")
    assert await app.tags.get("v1") == local.digest
    assert (await app.manifests.get(untagged.digest)).raw == untagged.raw
    alpine = target.repository("docker.io/library/alpine")
    assert (await alpine.get_manifest(Reference(tag="3"))).raw == cached.raw
    tool = target.repository("ghcr.io/org/tool")
    assert await tool.tags.get("1.0") == index.digest
    for child in index.children:
        assert await tool.manifests.exists(child.digest)
    for image, repository in ((local, app), (cached, alpine), (index, tool)):
        for digest, data in image.all_blobs.items():
            assert (await repository.blobs.stat(digest)).size == len(data)
            chunks = await repository.blobs.open(digest)
            assert b"".join([c async for c in chunks]) == data
    # Cached content is cached content of its upstream again; local content is local.
    driver = target.driver
    for digest in cached.blobs:
        await driver.stat(paths.blob_origin(digest, "docker.io"))
    for digest in local.blobs:
        assert await driver.list(paths.blob_dir(digest)) == ["data"]
    # Imported tags of caches are fresh.
    assert await metadata.get(stamp_key("docker.io/library/alpine", "3")) is not None
    assert await metadata.get(stamp_key("team/app", "v1")) is None


async def test_the_archive_is_an_oci_layout_with_the_documented_annotations(
    source: Store, tmp_path: Path
) -> None:
    await put_image(source, "docker.io/library/alpine", "3", seed=2, origin="docker.io")
    untagged = await put_image(source, "team/app", None, seed=4)
    archive = tmp_path / "store.tar"
    await export_to(source, archive)

    with tarfile.open(archive) as tar:
        names = tar.getnames()
        index = json.loads(tar.extractfile("index.json").read())  # type: ignore[union-attr]
        layout = json.loads(tar.extractfile("oci-layout").read())  # type: ignore[union-attr]
    assert names[:3] == ["oci-layout", "index.json", "mirror-archive.json"]
    assert layout == {"imageLayoutVersion": "1.0.0"}
    by_ref = {e["annotations"].get(REF_NAME): e for e in index["manifests"]}
    tagged = by_ref["docker.io/library/alpine:3"]["annotations"]
    assert tagged == {
        REF_NAME: "docker.io/library/alpine:3",
        CONTAINERD_NAME: "docker.io/library/alpine:3",
        ORIGIN: "docker.io",
    }
    assert by_ref[None]["annotations"] == {REPOSITORY: "team/app"}
    assert by_ref[None]["digest"] == str(untagged.digest)
    for entry in index["manifests"]:
        assert f"blobs/sha256/{entry['digest'].split(':')[1]}" in names


async def test_named_tags_and_repositories_only(
    source: Store, target: Store, tmp_path: Path
) -> None:
    await put_image(source, "team/app", "v1", seed=1)
    await put_image(source, "team/app", "v2", seed=2)
    await put_image(source, "team/other", "x", seed=3)
    await put_image(source, "team/lib", "y", seed=4)
    archive = tmp_path / "part.tar"
    await export_to(source, archive, ("team/app:v2", "team/lib"))

    await import_from(target, archive)

    assert await target.repositories() == ["team/app", "team/lib"]
    assert await target.repository("team/app").tags.all() == ["v2"]
    with pytest.raises(SelectionError, match="team/nothing is not in the store"):
        await export_to(source, archive, ("team/nothing",))
    with pytest.raises(SelectionError, match="team/app:v9 is not in the store"):
        await export_to(source, archive, ("team/app:v9",))


async def test_a_partial_cache_index_exports_what_it_holds(
    source: Store, target: Store, tmp_path: Path
) -> None:
    index = await put_index(
        source, "docker.io/library/multi", "1", seed=5, stored=("amd64",), origin="docker.io"
    )
    archive = tmp_path / "partial.tar"
    await export_to(source, archive)

    await import_from(target, archive)

    repository = target.repository("docker.io/library/multi")
    assert await repository.tags.get("1") == index.digest
    (kept,) = index.children
    assert await repository.manifests.exists(kept.digest)


async def test_import_is_idempotent(source: Store, target: Store, tmp_path: Path) -> None:
    image = await put_image(source, "team/app", "v1", seed=1)
    archive = tmp_path / "store.tar"
    await export_to(source, archive)

    first = await import_from(target, archive)
    again = await import_from(target, archive)

    assert first.blobs == 4 and first.present == 0
    assert again.blobs == 0 and again.present == 4
    assert await target.repository("team/app").tags.get("v1") == image.digest


async def test_since_writes_only_what_the_earlier_archive_lacks(
    source: Store, target: Store, tmp_path: Path
) -> None:
    first_image = await put_image(source, "team/app", "v1", seed=1)
    first = tmp_path / "first.tar"
    await export_to(source, first)
    second_image = await put_image(source, "team/app", "v2", seed=2)
    second = tmp_path / "second.tar"
    await export_to(source, second, since=covered_by(str(first)))

    with tarfile.open(second) as tar:
        carried = {n for n in tar.getnames() if n.startswith("blobs/sha256/")}
    expected = {second_image.digest, *second_image.blobs}
    assert carried == {f"blobs/sha256/{d.hex}" for d in expected}
    # The second one's list covers both, so a third made --since it carries nothing.
    assert covered_by(str(second)) >= {first_image.digest, *first_image.blobs, *expected}

    await import_from(target, first)
    await import_from(target, second)
    assert await target.repository("team/app").tags.all() == ["v1", "v2"]
