"""A damaged, cut or incomplete archive is refused with one clear line, and leaves
nothing visible in the store."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from mirror.archive.export import covered_by
from mirror.archive.format import ArchiveInvalid
from mirror.archive.importer import Importer
from mirror.archive.tarreader import TarReader
from mirror.digests import Digest
from mirror.store.store import Store
from tests.support.storefill import put_image
from tests.test_archive_roundtrip import export_to, import_from, new_store

pytestmark = pytest.mark.anyio


@pytest.fixture
def source(driver_name: str, tmp_path: Path) -> Store:
    return new_store(driver_name, tmp_path / "source")


@pytest.fixture
def target(driver_name: str, tmp_path: Path) -> Store:
    return new_store(driver_name, tmp_path / "target")


async def nothing_visible(store: Store) -> None:
    assert await store.repositories() == []


def largest_blob(path: Path) -> tarfile.TarInfo:
    with tarfile.open(path) as tar:
        blobs = [m for m in tar.getmembers() if m.name.startswith("blobs/sha256/")]
    return max(blobs, key=lambda m: m.size)


async def test_a_flipped_byte_is_refused(source: Store, target: Store, tmp_path: Path) -> None:
    await put_image(source, "team/app", "v1", seed=1, layer_size=64 * 1024)
    archive = tmp_path / "store.tar"
    await export_to(source, archive)
    member = largest_blob(archive)
    with archive.open("r+b") as f:
        f.seek(member.offset_data + member.size // 2)
        byte = f.read(1)
        f.seek(-1, io.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0x01]))

    with pytest.raises(ArchiveInvalid, match=rf"blob sha256:{member.name[13:]} is damaged"):
        await import_from(target, archive)
    await nothing_visible(target)
    assert not await target.blobs.exists(_digest(member))


async def test_a_cut_archive_is_refused_and_a_full_one_then_completes(
    source: Store, target: Store, tmp_path: Path
) -> None:
    image = await put_image(source, "team/app", "v1", seed=1, layer_size=64 * 1024)
    archive = tmp_path / "store.tar"
    await export_to(source, archive)
    cut = tmp_path / "cut.tar"
    cut.write_bytes(archive.read_bytes()[: archive.stat().st_size * 2 // 3])

    with pytest.raises(ArchiveInvalid, match=r"truncated|breaks off"):
        await import_from(target, cut)
    await nothing_visible(target)

    result = await import_from(target, archive)
    assert result.present >= 1  # what the cut run had committed is kept and skipped
    assert await target.repository("team/app").tags.get("v1") == image.digest


async def test_a_delta_without_its_base_is_refused(
    source: Store, target: Store, tmp_path: Path
) -> None:
    await put_image(source, "team/app", "v1", seed=1)
    first = tmp_path / "first.tar"
    await export_to(source, first)
    await put_image(source, "team/app", "v2", seed=2)
    second = tmp_path / "second.tar"
    await export_to(source, second, since=covered_by(str(first)))

    with pytest.raises(ArchiveInvalid, match=r"neither in the archive nor in the store.*--since"):
        await import_from(target, second)
    await nothing_visible(target)


async def test_not_a_tar(target: Store, tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"this is not a tar archive at all" * 100)
    with pytest.raises(ArchiveInvalid, match="not a readable tar archive"):
        await import_from(target, junk)


async def test_bad_annotations_are_refused(source: Store, target: Store, tmp_path: Path) -> None:
    await put_image(source, "team/app", "v1", seed=1)
    archive = tmp_path / "store.tar"
    await export_to(source, archive)
    rewritten = tmp_path / "rewritten.tar"
    with tarfile.open(archive) as old, tarfile.open(rewritten, "w") as new:
        for member in old.getmembers():
            body = old.extractfile(member) if member.isreg() else None
            if member.name == "index.json":
                assert body is not None
                doc = json.loads(body.read())
                doc["manifests"][0]["annotations"] = {
                    "org.opencontainers.image.ref.name": "Not/A:Repo:tag"
                }
                data = json.dumps(doc).encode()
                member.size = len(data)
                body = io.BytesIO(data)
            new.addfile(member, body)

    with pytest.raises(ArchiveInvalid, match=r"index.json: manifests\[0\]"):
        await import_from(target, rewritten)
    await nothing_visible(target)


async def test_an_archive_read_from_a_pipe(source: Store, target: Store, tmp_path: Path) -> None:
    image = await put_image(source, "team/app", "v1", seed=1)
    archive = tmp_path / "store.tar"
    await export_to(source, archive)
    stream = io.BytesIO(archive.read_bytes())
    await Importer(target).run(TarReader(stream, seekable=False), None)
    assert await target.repository("team/app").tags.get("v1") == image.digest


def _digest(member: tarfile.TarInfo) -> Digest:
    return Digest("sha256", member.name.rsplit("/", 1)[1])
