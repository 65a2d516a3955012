"""Reliability suite, damaged upstream bodies: cut, flipped, short, long and stalled blob
bodies through a `mirror serve` process give 0 corrupt blobs, stored or served whole,
and the next pull after the upstream recovers is right (issue 8, proof)."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import httpx
import pytest

from tests.support.badupstream import MODES, FaultyBlobs, Mode, serving_faulty_registry
from tests.support.fsck import scan_blob_store
from tests.support.mirrorproc import run_mirror
from tests.support.oci import random_bytes
from tests.support.processes import wait_until
from tests.support.pullhelpers import proxy_settings
from tests.support.scrape import sample

pytestmark = pytest.mark.slow

SIZE = 1024 * 1024 + 7


def push(url: str, data: bytes) -> str:
    digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
    with httpx.Client(base_url=url, trust_env=False) as client:
        r = client.post("/v2/library/app/blobs/uploads/", params={"digest": digest}, content=data)
        assert r.status_code == 201, r.text
    return digest


def pull(url: str, digest: str) -> tuple[int, bytes, bool]:
    """(status, body, whether the body came whole: the response ended cleanly)."""
    body = b""
    with (
        httpx.Client(base_url=url, trust_env=False, timeout=30.0) as client,
        client.stream("GET", f"/v2/app/blobs/{digest}") as response,
    ):
        try:
            for chunk in response.iter_raw():
                body += chunk
        except httpx.TransportError:
            return response.status_code, body, False
        return response.status_code, body, True


def assert_never_served_wrong(status: int, body: bytes, whole: bool, digest: str) -> None:
    if status == 200 and whole:
        assert f"sha256:{hashlib.sha256(body).hexdigest()}" == digest, "corrupt blob served"
    else:
        assert status in (200, 502, 503), status


@pytest.mark.parametrize("workers", [1, 2])
def test_damaged_upstream_bodies_never_make_a_corrupt_blob(tmp_path: Path, workers: int) -> None:
    with serving_faulty_registry() as (upstream, faults):
        proxy = proxy_settings(upstream, timeouts={"read": "2s"})
        with run_mirror(tmp_path, proxy=proxy, workers=workers) as mirror:
            for index, mode in enumerate(MODES):
                data = random_bytes(SIZE, 100 + index)
                digest = push(upstream, data)
                damaged(mirror.url, mirror.root, faults, mode, digest)
                faults.mode = None
                status, body, whole = pull(mirror.url, digest)
                assert (status, whole) == (200, True) and body == data, mode
            wait_until(
                lambda: len(scan_blob_store(mirror.root).blobs) == len(MODES),
                10,
                what="every blob to be stored",
            )
            scan = scan_blob_store(mirror.root)
            assert scan.problems == []


def failed_fills(url: str) -> float:
    text = httpx.get(f"{url}/metrics", trust_env=False, timeout=5.0).text
    return sample(text, "mirror_fills_total", result="failed") or 0.0


def damaged(url: str, root: Path, faults: FaultyBlobs, mode: Mode, digest: str) -> None:
    faults.mode = mode
    gets, failed = faults.blob_gets, failed_fills(url)
    started = time.monotonic()
    status, body, whole = pull(url, digest)
    assert_never_served_wrong(status, body, whole, digest)
    assert faults.blob_gets > gets
    wait_until(lambda: failed_fills(url) > failed, 15, what=f"the {mode} download to fail")
    assert time.monotonic() - started < 20, mode
    assert digest not in scan_blob_store(root).blobs
