"""Reliability suite, Redis killed mid-pull: a pull-through mirror of two workers sharing
leases through a Redis of the test's own loses no pull when that Redis is SIGKILLed in
the middle of a slow download that four clients share, keeps serving while it is gone,
and carries on once it is back (issue 8, proof)."""

from __future__ import annotations

import hashlib
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.badupstream import serving_faulty_registry
from tests.support.fsck import scan_blob_store
from tests.support.mirrorproc import run_mirror
from tests.support.oci import random_bytes
from tests.support.processes import free_port, wait_until
from tests.support.pullhelpers import proxy_settings
from tests.support.redis import private_redis
from tests.support.scrape import samples
from tests.test_reliability_upstream import pull, push

pytestmark = pytest.mark.slow

MiB = 1 << 20
SIZE = 24 * MiB
RATE = 8 * MiB  # the shared download takes about 3 s
CLIENTS = 4


def test_a_redis_killed_mid_pull_loses_no_pull(tmp_path: Path) -> None:
    port = free_port()
    with (
        private_redis(port) as redis,
        serving_faulty_registry() as (upstream, faults),
    ):
        blobs = [random_bytes(SIZE, 1), random_bytes(MiB, 2), random_bytes(MiB, 3)]
        digests = [push(upstream, data) for data in blobs]
        proxy = proxy_settings(upstream)
        settings = {"addr": f"127.0.0.1:{port}", "dialtimeout": "200ms"}
        with (
            run_mirror(tmp_path, proxy=proxy, redis=settings, workers=2) as mirror,
            ThreadPoolExecutor(CLIENTS) as pool,
        ):
            faults.mode, faults.rate = "slow", RATE
            started = time.monotonic()
            pulls = [pool.submit(pull, mirror.url, digests[0]) for _ in range(CLIENTS)]
            time.sleep(1.0)
            assert not any(done.done() for done in pulls), "the download was not slow"
            redis.send_signal(signal.SIGKILL)
            redis.wait(10)
            for done in pulls:
                status, body, whole = done.result(timeout=60)
                assert (status, whole) == (200, True)
                assert hashlib.sha256(body).hexdigest() == digests[0][7:]
            assert time.monotonic() - started < 30
            # At most one download per worker, whatever became of the leases.
            assert faults.blob_gets <= 2, faults.blob_gets
            faults.mode = None
            assert pull(mirror.url, digests[1]) == (200, blobs[1], True)  # Redis gone
            with private_redis(port):
                assert pull(mirror.url, digests[2]) == (200, blobs[2], True)  # Redis back
            wait_until(
                lambda: len(scan_blob_store(mirror.root).blobs) == len(blobs),
                10,
                what="every blob to be stored",
            )
            assert scan_blob_store(mirror.root).problems == []
            text = httpx.get(f"{mirror.url}/metrics", trust_env=False).text
            fallbacks = sum(value for _, value in samples(text, "mirror_redis_fallbacks_total"))
            assert fallbacks >= 1
            assert 'status="500"' not in text
