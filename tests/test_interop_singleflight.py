"""One upstream download per blob, however many clients ask at once - proved end to end.

The upstream is a `docker-registry` process holding one uncompressible 100 MiB blob; its
own access log is the judge of how many times the blob was fetched. Each test starts
mirror(s) on an empty storage root, so the blob is uncached, releases every client at the
same instant, and hashes every byte each client receives.

Across processes the mirrors coordinate through Redis (the real server at
127.0.0.1:6379) or, without Redis, through lock files in the storage root they share.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.support import skopeo
from tests.support.binaries import unavailable
from tests.support.distribution import (
    RegistryProcess,
    count_blob_gets,
    count_requests,
    run_reference_registry,
    settle_log,
)
from tests.support.images import BlobFile, build_image, layout_digest, write_random_blob
from tests.support.mirrorproc import MirrorProcess, run_mirror
from tests.support.pullhelpers import (
    MiB,
    fetch_all,
    layout_blobs,
    proxy_settings,
    push_blob,
    scrape_metrics,
)
from tests.support.redis import REDIS_HOST, REDIS_PORT

pytestmark = [pytest.mark.interop, pytest.mark.slow]

CLIENTS = 8
BIG = 100 * MiB
REPOSITORY = "library/big"
DOWNLOADED = 'mirror_fills_total{result="downloaded"}'


@dataclass(frozen=True, slots=True)
class BigUpstream:
    registry: RegistryProcess
    blob: BlobFile

    def gets(self) -> int:
        settle_log(self.registry.log_path)
        return count_blob_gets(self.registry.log_path, self.blob.digest)


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BigUpstream]:
    """The upstream with the big blob. A random seed per run keeps its digest - and so
    every Redis key the mirrors derive from it - unique to this run.
    """
    workdir = tmp_path_factory.mktemp("big-upstream")
    blob = write_random_blob(workdir / "blob", BIG, seed=secrets.token_hex(8))
    with run_reference_registry(workdir / "registry") as registry:
        push_blob(registry.url, REPOSITORY, blob)
        yield BigUpstream(registry, blob)


def blob_urls(mirrors: list[MirrorProcess], digest: str) -> list[str]:
    """CLIENTS URLs of the blob, dealt round-robin over `mirrors`; half of them use the
    short name a Docker daemon would not send but a user might (`big` = `library/big`).
    """
    names = [REPOSITORY, REPOSITORY.removeprefix("library/")]
    return [
        f"{mirrors[i % len(mirrors)].url}/v2/{names[(i // len(mirrors)) % 2]}/blobs/{digest}"
        for i in range(CLIENTS)
    ]


def assert_all_correct(big: BigUpstream, urls: list[str], *, together: bool = True) -> None:
    results = fetch_all(urls)
    if together:
        # Every request was sent before any finished: they really were in flight at once.
        assert max(r.sent for r in results) < min(r.finished for r in results)
    for url, result in zip(urls, results, strict=True):
        assert result.status == 200, url
        assert (result.digest, result.size) == (big.blob.digest, big.blob.size), url


def downloads(mirrors: list[MirrorProcess]) -> float:
    """Downloads the mirrors themselves counted, summed over every process."""
    return sum(scrape_metrics(m.url).get(DOWNLOADED, 0.0) for m in mirrors)


def test_eight_clients_one_upstream_get_of_a_big_blob(tmp_path: Path, big: BigUpstream) -> None:
    before = big.gets()
    with run_mirror(tmp_path, proxy=proxy_settings(big.registry.url)) as mirror:
        assert_all_correct(big, blob_urls([mirror], big.blob.digest))
        assert big.gets() - before == 1
        assert downloads([mirror]) == 1
        # Now cached: another round costs the upstream nothing.
        assert_all_correct(big, blob_urls([mirror], big.blob.digest)[:2], together=False)
        assert big.gets() - before == 1


def test_eight_concurrent_skopeo_copies_one_get_per_blob(tmp_path: Path) -> None:
    image = build_image(tmp_path / "src", layers=[8 * MiB, 3 * MiB, 2000], seed="eight")
    with (
        run_reference_registry(tmp_path / "hub") as hub,
        run_mirror(tmp_path, proxy=proxy_settings(hub.url)) as mirror,
    ):
        skopeo.copy(image.source_ref, hub.ref("library/eight", "1"))
        layouts = [tmp_path / f"copy-{n}" for n in range(CLIENTS)]
        with ThreadPoolExecutor(CLIENTS) as pool:
            list(
                pool.map(
                    lambda layout: skopeo.copy(mirror.ref("library/eight", "1"), f"oci:{layout}:1"),
                    layouts,
                )
            )
        settle_log(hub.log_path)
        for blob in image.blobs:
            assert count_blob_gets(hub.log_path, blob.digest) == 1, blob
        # The tag was resolved upstream once too (concurrent tag fills coalesce).
        assert count_requests(hub.log_path, "GET", "/v2/library/eight/manifests/") == 1
    for layout in layouts:
        assert layout_digest(layout, "1") == image.digest
        blobs = layout_blobs(layout)
        assert all(name == actual for name, actual in blobs.items())
        assert {blob.digest for blob in image.blobs} <= set(blobs)


@pytest.fixture
def redis_db() -> Iterator[dict[str, Any]]:
    """The `redis:` block for the real Redis, after checking that it answers (a skip
    locally, a failure under CI).

    The mirrors use the shared db with their fixed `mirror:` prefix; the keys they make
    here all contain the big blob's per-run digest, which is how `forget_keys` finds them.
    """
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, socket_timeout=2.0)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        unavailable(f"Redis is not reachable at {REDIS_HOST}:{REDIS_PORT}: {exc}")
    try:
        yield {"addr": f"{REDIS_HOST}:{REDIS_PORT}", "db": 0}
    finally:
        client.close()


def forget_keys(digest: str) -> list[bytes]:
    """Delete (and return) the Redis keys under `mirror:` that mention `digest`."""
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, socket_timeout=2.0)
    try:
        keys = list(client.scan_iter(match=f"mirror:*{digest.split(':')[1]}*", count=500))
        if keys:
            client.delete(*keys)
        return keys
    finally:
        client.close()


def two_mirrors(
    stack: ExitStack, tmp_path: Path, big: BigUpstream, **options: Any
) -> list[MirrorProcess]:
    shared = tmp_path / "shared-root"
    proxy = proxy_settings(big.registry.url)
    return [
        stack.enter_context(run_mirror(tmp_path, name=name, root=shared, proxy=proxy, **options))
        for name in ("mirror-a", "mirror-b")
    ]


@pytest.mark.redis
def test_two_processes_coordinated_by_redis_fetch_once(
    tmp_path: Path, big: BigUpstream, redis_db: dict[str, Any]
) -> None:
    before = big.gets()
    try:
        with ExitStack() as stack:
            mirrors = two_mirrors(stack, tmp_path, big, redis=redis_db)
            assert_all_correct(big, blob_urls(mirrors, big.blob.digest))
            assert big.gets() - before == 1
            assert downloads(mirrors) == 1
            for mirror in mirrors:
                metrics = scrape_metrics(mirror.url)
                up = {k: v for k, v in metrics.items() if k.startswith("mirror_redis_up{")}
                assert up and all(v == 1.0 for v in up.values()), up
                fallbacks = [k for k in metrics if k.startswith("mirror_redis_fallbacks_total")]
                assert all(metrics[k] == 0 for k in fallbacks), fallbacks
    finally:
        leftovers = forget_keys(big.blob.digest)
    # A finished fill leaves nothing behind in Redis: its lease and announcement are gone
    # (the blob's access time, which eviction reads, stays).
    assert [key for key in leftovers if b"access/" not in key] == []


def test_two_processes_sharing_a_directory_fetch_once(tmp_path: Path, big: BigUpstream) -> None:
    before = big.gets()
    with ExitStack() as stack:
        mirrors = two_mirrors(stack, tmp_path, big)
        assert_all_correct(big, blob_urls(mirrors, big.blob.digest))
        assert big.gets() - before == 1
        assert downloads(mirrors) == 1
        # The process that did not download followed the other's partial file.
        followed = sum(
            scrape_metrics(m.url).get("mirror_fills_followed_total", 0.0) for m in mirrors
        )
        assert followed >= 1


def test_one_mirror_with_two_granian_workers_fetches_once(tmp_path: Path, big: BigUpstream) -> None:
    # granian is the production default; each worker is a process of its own.
    before = big.gets()
    proxy = proxy_settings(big.registry.url)
    with run_mirror(tmp_path, proxy=proxy, server="granian", workers=2) as mirror:
        assert_all_correct(big, blob_urls([mirror], big.blob.digest))
    assert big.gets() - before == 1
