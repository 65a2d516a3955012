"""Reliability suite, load: 200 connections on a pull-through mirror (granian, one worker)
for a few seconds each on a cached tag's manifest and on a cached blob; 0 errors (any
non-2xx answer or socket error fails, `bench.loadgen.parse_wrk`), and the resident memory
of the server's process tree stays flat (issue 8, proof: 4 x 30 s there; short here, the
machine is shared). Needs `wrk` (skips without it; fails under CI).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from bench.loadgen import wrk
from bench.rss import find_server, tree_rss
from tests.support.binaries import require_binary
from tests.support.mirrorproc import MirrorProcess, run_mirror
from tests.support.oci import push_blob, push_image, random_bytes
from tests.support.pullhelpers import proxy_settings

pytestmark = pytest.mark.slow

MiB = 1 << 20
CONNECTIONS = 200
SECONDS = 4
RSS_GROWTH = 48 * MiB  # the adversarial run saw 93 -> 108 MB over 4 x 30 s
ACCEPT = "application/vnd.oci.image.manifest.v1+json"


async def seed(upstream: MirrorProcess) -> str:
    async with httpx.AsyncClient(base_url=upstream.url, trust_env=False) as client:
        await push_image(client, "library/app", "v1")
        return await push_blob(client, "library/app", random_bytes(256 * 1024, 7))


def test_200_connections_get_no_errors_and_memory_stays_flat(tmp_path: Path) -> None:
    require_binary("wrk")
    with run_mirror(tmp_path, name="upstream") as upstream:
        blob = asyncio.run(seed(upstream))
        proxy = proxy_settings(upstream.url, freshness="5m")
        with run_mirror(tmp_path, name="mirror", proxy=proxy) as mirror:
            manifest_url = f"{mirror.url}/v2/app/manifests/v1"
            blob_url = f"{mirror.url}/v2/app/blobs/{blob}"
            for url in (manifest_url, blob_url):  # cached now
                assert httpx.get(url, headers={"Accept": ACCEPT}, trust_env=False).is_success
            server = find_server(mirror.config_path)
            # Warm up (connections, buffers, allocator arenas), then measure.
            wrk(manifest_url, connections=CONNECTIONS, threads=2, seconds=2)
            before = tree_rss(server)
            rates = [
                wrk(
                    url,
                    connections=CONNECTIONS,
                    threads=2,
                    seconds=SECONDS,
                    headers={"Accept": ACCEPT},
                )
                for url in (manifest_url, blob_url, manifest_url)
            ]
            after = tree_rss(server)
            assert all(rate.requests > 0 for rate in rates)
            assert after - before < RSS_GROWTH, (before / MiB, after / MiB)
            # Still serving, and none of it was an upstream request or a server error.
            metrics = httpx.get(f"{mirror.url}/metrics", trust_env=False).text
            assert 'status="500"' not in metrics
        # Clients closing their connections at the end of each run are not errors (the
        # sendfile path once sent into closed, reused socket descriptors here).
        log = mirror.log_path.read_text()
        assert "Traceback" not in log, log[log.find("Traceback") - 2000 :][:6000]
