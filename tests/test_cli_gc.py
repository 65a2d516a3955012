"""`mirror garbage-collect` as a command: flags, output, exit status, the lease."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from bench.gcstore import GCShape, blob_names, build_store
from mirror.coordination.file_leases import FileCoordinator
from mirror.lifecycle.collector import LEASE_KEY
from tests.test_server import clean_env

ROOT = Path(__file__).resolve().parent.parent
SHAPE = GCShape(manifests=12, repositories=3, shared_layers=2, orphans=5)


def gc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mirror", "garbage-collect", *args],
        cwd=ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def store(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "root"
    build_store(root, SHAPE)
    config = tmp_path / "config.yml"
    config.write_text(f"storage:\n  filesystem:\n    rootdirectory: {root}\n")
    return root, config


def test_prints_what_it_marks_and_deletes_then_a_summary(store: tuple[Path, Path]) -> None:
    root, config = store
    before = blob_names(root)
    result = gc(str(config))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "team00/app00000" in lines
    assert any(line.startswith("team00/app00000: marking manifest sha256:") for line in lines)
    assert sum(line.startswith("blob eligible for deletion: ") for line in lines) == 5
    assert lines[-2] == "62 blobs marked, 5 blobs and 0 manifests eligible for deletion"
    assert lines[-1].startswith("garbage-collect: removed 5 blobs (")
    assert len(before - blob_names(root)) == 5
    assert result.stderr == ""


def test_dry_run_and_quiet(store: tuple[Path, Path]) -> None:
    root, config = store
    before = blob_names(root)
    result = gc("--dry-run", "--quiet", "--delete-untagged", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1
    assert result.stdout.startswith("garbage-collect: would remove 15 blobs (")
    assert "2 manifests and 13 layer links" in result.stdout
    assert blob_names(root) == before


def test_a_grace_delay_keeps_fresh_content(store: tuple[Path, Path]) -> None:
    root, config = store
    before = blob_names(root)
    result = gc("-q", "--delay", "1h", str(config))
    assert result.returncode == 0, result.stderr
    assert "removed 0 blobs" in result.stdout
    assert "5 unreferenced but recent" in result.stdout
    assert blob_names(root) == before


def test_usage_and_config_errors_exit_2(store: tuple[Path, Path], tmp_path: Path) -> None:
    _, config = store
    bad_delay = gc("--delay", "soon", str(config))
    assert bad_delay.returncode == 2
    assert "--delay" in bad_delay.stderr
    (tmp_path / "bad.yml").write_text("storage: {}\nhttp:\n  addr: x\n")
    bad_config = gc(str(tmp_path / "bad.yml"))
    assert bad_config.returncode == 2
    assert bad_config.stderr.startswith("mirror: config error: ")


def test_a_second_collection_is_refused_while_one_holds_the_lease(
    store: tuple[Path, Path],
) -> None:
    root, config = store
    before = blob_names(root)

    async def hold() -> subprocess.CompletedProcess[str]:
        coordinator = FileCoordinator(root / "_mirror" / "leases")
        lease = await coordinator.acquire(LEASE_KEY, 60.0, b"the online job")
        assert lease is not None
        try:
            return await asyncio.to_thread(gc, str(config))
        finally:
            await lease.release()
            await coordinator.aclose()

    result = asyncio.run(hold())
    assert result.returncode == 1
    assert "another garbage collection is running (the online job)" in result.stderr
    assert blob_names(root) == before


def test_an_in_memory_store_has_nothing_to_collect(tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text("storage:\n  inmemory: {}\n")
    result = gc("-q", str(config))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("garbage-collect: removed 0 blobs")
