"""The garbage-collection workload's parts: the store it writes and the process measure."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bench.gc import run_measured
from bench.gcstore import ROOT, GCShape, blob_names, build_store
from mirror.lifecycle.collector import GarbageCollector
from mirror.store.drivers import create_driver

pytestmark = pytest.mark.anyio

SHAPE = GCShape(manifests=40, repositories=4, shared_layers=5, orphans=7)


def test_the_store_has_the_shape_it_claims(tmp_path: Path) -> None:
    build_store(tmp_path, SHAPE)
    blobs = blob_names(tmp_path)
    assert len(blobs) == SHAPE.blobs + SHAPE.manifests
    revisions = list((tmp_path / ROOT / "repositories").rglob("revisions/sha256/*/link"))
    assert len(revisions) == SHAPE.manifests
    tags = list((tmp_path / ROOT / "repositories").rglob("tags/*/current/link"))
    assert len(tags) == SHAPE.manifests * (1 - SHAPE.untagged)


async def test_collecting_it_removes_exactly_the_orphans(tmp_path: Path) -> None:
    build_store(tmp_path, SHAPE)
    before = blob_names(tmp_path)
    driver = create_driver("filesystem", {"rootdirectory": str(tmp_path)})
    report = await GarbageCollector(driver).run()
    assert report.blobs_removed == SHAPE.orphans
    assert report.manifests_marked == SHAPE.manifests
    assert len(before - blob_names(tmp_path)) == SHAPE.orphans


def test_run_measured_reports_time_and_peak_memory(tmp_path: Path) -> None:
    script = "block = bytearray(30 << 20); print('done')"
    seconds, peak = run_measured([sys.executable, "-c", script], tmp_path / "log", 60.0)
    assert seconds > 0
    assert peak > 30 << 20
    assert (tmp_path / "log").read_text() == "done\n"
    with pytest.raises(RuntimeError, match="exited 3"):
        run_measured([sys.executable, "-c", "raise SystemExit(3)"], tmp_path / "log", 60.0)
