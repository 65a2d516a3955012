"""Eviction end to end (issue 12): `mirror serve` with a small `cache.maxsize` in front of
a real upstream (`docker-registry`), pulled through with skopeo.

- Four 1 MiB images through a 2.5 MiB cap: the cached bytes end under the cap, the
  newest image is served with no upstream request, the oldest is fetched again, and a
  pushed local image (larger than what is left of the cap) is intact.
- A slow client reading a large cached blob while fills push the cache over its cap:
  it gets the whole blob, which stays stored until the download is over, and goes at
  the first pass after it.

Eviction keeps anything used within the last 6 seconds (`eviction.PROTECT`), so the
tests wait that long where they need an image to have become old.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mirror.lifecycle.eviction import PROTECT
from mirror.lifecycle.usage import usage
from mirror.store.drivers import create_driver
from tests.support import skopeo
from tests.support.distribution import RegistryProcess, count_blob_gets, run_reference_registry
from tests.support.images import BuiltImage, build_image, layout_digest
from tests.support.mirrorproc import MirrorProcess, run_mirror
from tests.support.pullhelpers import MiB, log_mark, proxy_settings, requests_since

pytestmark = pytest.mark.interop

CAP = int(2.5 * MiB)


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[RegistryProcess]:
    with run_reference_registry(tmp_path / "hub") as registry:
        yield registry


def cached_bytes(root: Path) -> int:
    driver = create_driver("filesystem", {"rootdirectory": str(root)})

    def origin_of(name: str) -> str | None:
        return "docker.io" if name.startswith("docker.io/") else None

    report = asyncio.run(usage(driver, origin_of))
    return report.cached.get("docker.io", 0)


def wait_until_under(root: Path, cap: int, timeout: float = 15.0) -> int:
    deadline = time.monotonic() + timeout
    while True:
        size = cached_bytes(root)
        if size <= cap or time.monotonic() > deadline:
            return size
        time.sleep(0.2)


def pull(mirror: MirrorProcess, repository: str, tag: str, into: Path) -> str:
    skopeo.copy(mirror.ref(repository, tag), f"oci:{into}:{tag}")
    return layout_digest(into, tag)


def publish(tmp_path: Path, hub: RegistryProcess, name: str, size: int) -> BuiltImage:
    image = build_image(tmp_path / f"src-{name}", layers=[size], seed=name, tag="1")
    skopeo.copy(image.source_ref, hub.ref(f"library/{name}", "1"))
    return image


def test_images_through_a_small_cap(tmp_path: Path, hub: RegistryProcess) -> None:
    images = {name: publish(tmp_path, hub, name, MiB) for name in ("one", "two", "three", "four")}
    local = build_image(tmp_path / "src-local", layers=[2 * MiB], seed="local", tag="v1")
    proxy = proxy_settings(hub.url, local=["team"])
    extra = {"cache": {"maxsize": "2.5MiB"}}
    with run_mirror(tmp_path, proxy=proxy, extra=extra) as mirror:
        skopeo.copy(local.source_ref, mirror.ref("team/app", "v1"))
        for name in ("one", "two"):
            assert pull(mirror, f"library/{name}", "1", tmp_path / name) == images[name].digest
        time.sleep(PROTECT + 1)  # "one" and "two" are no longer in use
        for name in ("three", "four"):
            assert pull(mirror, f"library/{name}", "1", tmp_path / name) == images[name].digest

        assert wait_until_under(mirror.root, CAP) <= CAP
        metrics = httpx.get(f"{mirror.url}/metrics", timeout=10).text
        # The newest: every byte from the cache, not one upstream request.
        mark = log_mark(hub)
        assert pull(mirror, "library/four", "1", tmp_path / "four-again") == images["four"].digest
        assert requests_since(hub, mark) == []
        # The oldest was evicted: fetched again, layer and all.
        mark = log_mark(hub)
        assert pull(mirror, "library/one", "1", tmp_path / "one-again") == images["one"].digest
        layer = images["one"].layers[0].digest
        assert any(e.method == "GET" and layer in e.path for e in requests_since(hub, mark))
        # The local image: not counted, not evicted.
        assert pull(mirror, "team/app", "v1", tmp_path / "app") == local.digest
    values = dict(line.rsplit(" ", 1) for line in metrics.splitlines() if line[:1] != "#")
    assert float(values["mirror_cache_max_bytes"]) == CAP
    assert float(values['mirror_evictions_total{reason="size"}']) >= 2
    assert float(values["mirror_cache_size_bytes"]) <= CAP
    assert count_blob_gets(hub.log_path, images["four"].layers[0].digest) == 1


def test_eviction_during_a_slow_download_does_not_cut_it(
    tmp_path: Path, hub: RegistryProcess
) -> None:
    big = publish(tmp_path, hub, "big", 32 * MiB)
    small = [publish(tmp_path, hub, f"small{i}", 300 * 1024) for i in range(3)]
    proxy = proxy_settings(hub.url)
    with run_mirror(tmp_path, proxy=proxy, extra={"cache": {"maxsize": "1MiB"}}) as mirror:
        assert pull(mirror, "library/big", "1", tmp_path / "big") == big.digest
        layer = big.layers[0]
        data = mirror.root / f"docker/registry/v2/blobs/sha256/{layer.hex[:2]}/{layer.hex}/data"
        assert data.exists()
        started = threading.Event()
        result: dict[str, object] = {}

        def slow_read() -> None:
            url = f"{mirror.url}/v2/library/big/blobs/{layer.digest}"
            hasher = hashlib.sha256()
            with httpx.stream("GET", url, timeout=60) as response:
                for chunk in response.iter_bytes(256 * 1024):
                    hasher.update(chunk)
                    started.set()
                    time.sleep(0.1)  # ~2.5 MB/s: the download takes over 10 seconds
            result["digest"] = "sha256:" + hasher.hexdigest()

        reader = threading.Thread(target=slow_read)
        reader.start()
        assert started.wait(30)
        # Fills while it reads: each is followed by a pass over the cap.
        pull(mirror, "library/small0", "1", tmp_path / "s0")
        time.sleep(PROTECT + 1)
        pull(mirror, "library/small1", "1", tmp_path / "s1")
        time.sleep(1.0)
        still_reading = reader.is_alive()
        stored_meanwhile = data.exists()
        reader.join(120)
        assert result.get("digest") == layer.digest
        assert still_reading and stored_meanwhile
        # Not in use any more: the next fill's pass takes it.
        time.sleep(PROTECT + 3)
        pull(mirror, "library/small2", "1", tmp_path / "s2")
        deadline = time.monotonic() + 15
        while data.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not data.exists()
        assert small  # the small images stay pullable
        assert pull(mirror, "library/small2", "1", tmp_path / "s2b") == small[2].digest
