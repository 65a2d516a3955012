"""The upstream goes away: what is cached keeps being served, the rest fails cleanly.

The upstream (`docker-registry`) is stopped for real and later started again on the same
port and storage. Images are cached the way each client caches them - skopeo GETs the
manifest by tag, containerd resolves the tag with HEAD and then GETs by digest - and
pulled again during the outage by both clients.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support import skopeo
from tests.support.binaries import require_root
from tests.support.containerd import Containerd, CtrError, run_containerd, write_hosts_toml
from tests.support.distribution import RegistryProcess, count_blob_gets, settle_log
from tests.support.images import BuiltImage, build_image, layout_digest
from tests.support.mirrorproc import MirrorProcess, run_mirror
from tests.support.processes import free_port
from tests.support.pullhelpers import (
    HTTP_TIMEOUT,
    MiB,
    UpstreamControl,
    proxy_settings,
)

pytestmark = pytest.mark.interop

FRESHNESS = 1.0
BREAKER_RESET = 1.0
CTR_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class Outage:
    upstream: UpstreamControl
    mirror: MirrorProcess
    hosts: Path  # containerd's hosts dir: docker.io through the mirror

    @property
    def hub(self) -> RegistryProcess:
        return self.upstream.process

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.mirror.url, timeout=HTTP_TIMEOUT, trust_env=False)


@pytest.fixture
def outage(tmp_path: Path) -> Iterator[Outage]:
    """A mirror of an upstream the test can stop; tags go stale after FRESHNESS."""
    upstream = UpstreamControl(tmp_path / "hub")
    with upstream as hub:
        proxy = proxy_settings(
            hub.url,
            freshness=f"{FRESHNESS}s",
            breaker={"failures": 3, "reset": f"{BREAKER_RESET}s"},
            timeouts={"connect": "1s", "read": "10s"},
        )
        with run_mirror(tmp_path, proxy=proxy) as mirror:
            hosts = tmp_path / "hosts"
            # containerd falls back to the registry's own server when the mirror fails;
            # a closed loopback port makes that fail at once instead of going online.
            dead = f"http://127.0.0.1:{free_port()}"
            write_hosts_toml(hosts, "docker.io", mirror.url, server=dead)
            yield Outage(upstream, mirror, hosts)


@pytest.fixture
def containerd(tmp_path: Path) -> Iterator[Containerd]:
    require_root("containerd")
    with run_containerd(tmp_path / "containerd") as daemon:
        yield daemon


def error_code(response: httpx.Response) -> str:
    return str(response.json()["errors"][0]["code"])


def image_digests(image: BuiltImage) -> set[str]:
    return {image.digest, *(blob.digest for blob in image.blobs)}


def go_down(outage: Outage) -> None:
    outage.upstream.stop()
    time.sleep(FRESHNESS + 0.1)  # every cached tag is now due for revalidation


def assert_served_stale(outage: Outage, name: str, image: BuiltImage) -> None:
    """GET and HEAD of tag `1` answer from cache, marked with a `Warning: 299`."""
    accept = {"Accept": image.media_type}
    with outage.client() as client:
        got = client.get(f"/v2/{name}/manifests/1", headers=accept)
        assert got.status_code == 200, got.text
        assert got.content == image.manifest
        assert got.headers["Warning"].startswith('299 - "'), got.headers
        head = client.head(f"/v2/{name}/manifests/1", headers=accept)
        assert head.status_code == 200
        assert head.headers["Docker-Content-Digest"] == image.digest
        assert head.headers["Warning"].startswith('299 - "'), head.headers


def test_cached_image_survives_the_outage_and_new_pulls_work_after_it(
    tmp_path: Path, outage: Outage, containerd: Containerd
) -> None:
    cached = build_image(tmp_path / "src", layers=[2 * MiB, 100], seed="cached", tag="c")
    later = build_image(tmp_path / "src", layers=[MiB], seed="later", tag="l")
    skopeo.copy(cached.source_ref, outage.hub.ref("library/app", "1"))
    skopeo.copy(later.source_ref, outage.hub.ref("library/later", "1"))
    skopeo.copy(outage.mirror.ref("library/app", "1"), f"oci:{tmp_path / 'warm'}:1")

    go_down(outage)

    assert_served_stale(outage, "library/app", cached)
    skopeo.copy(outage.mirror.ref("library/app", "1"), f"oci:{tmp_path / 'offline'}:1")
    assert layout_digest(tmp_path / "offline", "1") == cached.digest
    containerd.pull("docker.io/library/app:1", hosts_dir=outage.hosts, timeout=CTR_TIMEOUT)
    assert image_digests(cached) <= containerd.content_digests()

    with outage.client() as client:
        missing = client.get("/v2/library/later/manifests/1")
        assert missing.status_code == 503, missing.text
        assert error_code(missing) == "UNAVAILABLE"
        assert client.head("/v2/library/later/manifests/1").status_code == 503
        blob = client.get(f"/v2/library/later/blobs/{later.layers[0].digest}")
        assert blob.status_code == 503, blob.text
        assert error_code(blob) == "UNAVAILABLE"
    with pytest.raises(skopeo.SkopeoError):
        skopeo.copy(outage.mirror.ref("library/later", "1"), f"oci:{tmp_path / 'no'}:1")
    with pytest.raises(CtrError):
        containerd.pull("docker.io/library/later:1", hosts_dir=outage.hosts, timeout=CTR_TIMEOUT)

    # The failures opened the circuit breaker; the cache still answers, and the mirror
    # itself is healthy.
    assert_served_stale(outage, "library/app", cached)
    with outage.client() as client:
        assert client.get("/v2/").status_code == 200

    outage.upstream.start()
    time.sleep(BREAKER_RESET + 0.1)  # the breaker now lets a trial request through
    skopeo.copy(outage.mirror.ref("library/later", "1"), f"oci:{tmp_path / 'back'}:1")
    assert layout_digest(tmp_path / "back", "1") == later.digest
    containerd.pull("docker.io/library/later:1", hosts_dir=outage.hosts, timeout=CTR_TIMEOUT)
    assert image_digests(later) <= containerd.content_digests()
    with outage.client() as client:
        fresh = client.get("/v2/library/app/manifests/1", headers={"Accept": cached.media_type})
        assert fresh.status_code == 200 and "Warning" not in fresh.headers
    settle_log(outage.hub.log_path)
    for blob_file in later.blobs:
        assert count_blob_gets(outage.hub.log_path, blob_file.digest) == 1


def test_image_cached_by_containerd_survives_the_outage(
    tmp_path: Path, outage: Outage, containerd: Containerd
) -> None:
    image = build_image(tmp_path / "src", layers=[2 * MiB, 100], seed="ctr")
    skopeo.copy(image.source_ref, outage.hub.ref("library/app", "1"))
    containerd.pull("docker.io/library/app:1", hosts_dir=outage.hosts, timeout=CTR_TIMEOUT)
    containerd.remove_image("docker.io/library/app:1")

    go_down(outage)

    containerd.pull("docker.io/library/app:1", hosts_dir=outage.hosts, timeout=CTR_TIMEOUT)
    assert image_digests(image) <= containerd.content_digests()
    assert_served_stale(outage, "library/app", image)
