"""`mirror export` and `mirror import` as commands: files, exit statuses, messages."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest
import yaml

from mirror.__main__ import main
from mirror.store.drivers import create_driver
from mirror.store.store import Store
from tests.support.storefill import StoredImage, put_image


def write_config(tmp_path: Path, name: str, *, proxy: bool = True) -> tuple[Path, Path]:
    root = tmp_path / name
    config: dict[str, object] = {
        "version": 0.1,
        "storage": {"filesystem": {"rootdirectory": str(root)}},
    }
    if proxy:
        config["proxy"] = {"remoteurl": "http://127.0.0.1:9", "name": "docker.io", "offline": True}
    path = tmp_path / f"{name}.yml"
    path.write_text(yaml.safe_dump(config))
    return path, root


def store_at(root: Path) -> Store:
    return Store(create_driver("filesystem", {"rootdirectory": str(root)}))


def fill(root: Path) -> tuple[StoredImage, StoredImage]:
    async def put() -> tuple[StoredImage, StoredImage]:
        store = store_at(root)
        local = await put_image(store, "team/app", "v1", seed=1)
        cached = await put_image(store, "docker.io/library/alpine", "3", seed=2, origin="docker.io")
        return local, cached

    return asyncio.run(put())


def tags(root: Path, name: str) -> list[str]:
    async def read() -> list[str]:
        return list(await store_at(root).repository(name).tags.all())

    return asyncio.run(read())


def test_export_then_import(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source, source_root = write_config(tmp_path, "source")
    target, target_root = write_config(tmp_path, "target", proxy=False)
    fill(source_root)
    archive = tmp_path / "out.tar"

    assert main(["export", "--config", str(source), "-o", str(archive)]) == 0
    assert "exported 2 images: 8 blobs" in capsys.readouterr().err
    assert not Path(f"{archive}.partial").exists()
    assert main(["import", "--config", str(target), str(archive)]) == 0
    assert "imported 2 images of 2 repositories: 8 blobs written" in capsys.readouterr().err
    assert tags(target_root, "team/app") == ["v1"]
    assert tags(target_root, "docker.io/library/alpine") == ["3"]

    assert main(["import", "--config", str(target), str(archive)]) == 0
    assert "0 blobs written (0 B), 8 already stored" in capsys.readouterr().err


def test_export_of_a_name_not_stored(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source, source_root = write_config(tmp_path, "source")
    fill(source_root)
    archive = tmp_path / "out.tar"

    status = main(["export", "--config", str(source), "-o", str(archive), "team/none:1"])

    assert status == 1
    err = capsys.readouterr().err
    assert err == "mirror: export failed: repository team/none is not in the store\n"
    assert not archive.exists() and not Path(f"{archive}.partial").exists()


def test_import_of_a_damaged_archive(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source, source_root = write_config(tmp_path, "source")
    target, target_root = write_config(tmp_path, "target")
    fill(source_root)
    archive = tmp_path / "out.tar"
    assert main(["export", "--config", str(source), "-o", str(archive), "-q"]) == 0
    data = bytearray(archive.read_bytes())
    data[-2048] ^= 0xFF  # inside the last blob
    archive.write_bytes(bytes(data))

    status = main(["import", "--config", str(target), str(archive)])

    assert status == 1
    err = capsys.readouterr().err
    assert err.startswith(f"mirror: import failed: {archive} refused: blob sha256:")
    assert "is damaged: content digest" in err and err.count("\n") == 1
    assert "nothing of it was made visible" in err
    assert not (target_root / "docker/registry/v2/repositories").exists()


def test_import_of_something_else(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target, _ = write_config(tmp_path, "target")
    junk = tmp_path / "junk.tar"
    junk.write_bytes(io.BytesIO(b"x" * 4096).read())
    assert main(["import", "--config", str(target), str(junk)]) == 1
    assert "not a readable tar archive" in capsys.readouterr().err
    assert main(["import", "--config", str(target), str(tmp_path / "missing.tar")]) == 1
    assert "No such file or directory" in capsys.readouterr().err
