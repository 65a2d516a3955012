"""Tag freshness against a real upstream whose tag is moved by a real push.

Within the freshness TTL a tag is answered from the cache with no upstream request at
all; after it, one HEAD, and a GET only when the digest changed. The upstream's access
log tells which requests the mirror made (they carry the mirror's User-Agent; the test's
own pushes carry skopeo's).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mirror.registryhttp.client import USER_AGENT as MIRROR_USER_AGENT
from tests.support import skopeo
from tests.support.binaries import require_root
from tests.support.containerd import run_containerd, write_hosts_toml
from tests.support.distribution import RegistryProcess, access_log, run_reference_registry
from tests.support.images import BuiltImage, build_image, layout_digest
from tests.support.mirrorproc import MirrorProcess, run_mirror
from tests.support.pullhelpers import (
    HTTP_TIMEOUT,
    MiB,
    log_mark,
    proxy_settings,
    requests_since,
)

pytestmark = pytest.mark.interop

FRESHNESS = 1.0


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[RegistryProcess]:
    with run_reference_registry(tmp_path / "hub") as registry:
        yield registry


def mirror_requests(hub: RegistryProcess) -> list[tuple[str, str]]:
    """(method, path) of every request the mirror made upstream so far."""
    return [
        (entry.method, entry.path)
        for entry in access_log(hub.log_path)
        if entry.user_agent == MIRROR_USER_AGENT
    ]


def tag_digest(mirror: MirrorProcess, image: BuiltImage) -> str:
    """The digest the mirror serves for library/app:1 (a Docker daemon's GET)."""
    response = httpx.get(
        f"{mirror.url}/v2/library/app/manifests/1",
        headers={"Accept": image.media_type},
        timeout=HTTP_TIMEOUT,
        trust_env=False,
    )
    assert response.status_code == 200, response.text
    assert "Warning" not in response.headers
    return response.headers["Docker-Content-Digest"]


def test_retagged_image_is_served_after_the_freshness_ttl(
    tmp_path: Path, hub: RegistryProcess
) -> None:
    old = build_image(tmp_path / "src", layers=[MiB], seed="old", tag="old")
    new = build_image(tmp_path / "src", layers=[MiB], seed="new", tag="new")
    skopeo.copy(old.source_ref, hub.ref("library/app", "1"))
    # The new image's blobs go up first under another tag, so that moving the tag below
    # is quick (skopeo then only checks blobs and PUTs the manifest).
    skopeo.copy(new.source_ref, hub.ref("library/app", "staged"))
    manifest_path = "/v2/library/app/manifests"

    # Without prefetch: the upstream's log then holds only what the clients asked for.
    settings = proxy_settings(hub.url, freshness=f"{FRESHNESS}s", prefetch=False)
    with run_mirror(tmp_path, proxy=settings) as mirror:
        started = time.monotonic()
        assert tag_digest(mirror, old) == old.digest
        stamped = time.monotonic()  # the mirror stamped the tag before it answered
        skopeo.copy(new.source_ref, hub.ref("library/app", "1"))  # retag upstream
        within = tag_digest(mirror, old)
        elapsed = time.monotonic() - started
        assert elapsed < FRESHNESS, f"the retag took {elapsed:.2f}s, longer than the TTL"
        assert within == old.digest
        log_mark(hub)  # lets the log settle
        assert mirror_requests(hub) == [("GET", f"{manifest_path}/1")]

        time.sleep(max(0.0, FRESHNESS - (time.monotonic() - stamped)) + 0.1)
        skopeo.copy(mirror.ref("library/app", "1"), f"oci:{tmp_path / 'after'}:1")
        assert layout_digest(tmp_path / "after", "1") == new.digest
        log_mark(hub)
        assert mirror_requests(hub)[1:3] == [
            ("HEAD", f"{manifest_path}/1"),
            ("GET", f"{manifest_path}/{new.digest}"),
        ]
        assert {path for _, path in mirror_requests(hub)[3:]} == {
            f"/v2/library/app/blobs/{blob.digest}" for blob in new.blobs
        }

        # Once the TTL has run out again with the tag unchanged: one HEAD, no GET.
        mark = log_mark(hub)
        time.sleep(FRESHNESS + 0.1)
        assert tag_digest(mirror, new) == new.digest
        assert tag_digest(mirror, new) == new.digest
        served = requests_since(hub, mark)
        assert [(e.method, e.path) for e in served] == [("HEAD", f"{manifest_path}/1")]


def test_containerd_resolves_a_fresh_tag_without_asking_upstream(
    tmp_path: Path, hub: RegistryProcess
) -> None:
    require_root("containerd")
    image = build_image(tmp_path / "src", layers=[MiB], seed="fresh")
    skopeo.copy(image.source_ref, hub.ref("library/app", "1"))
    hosts = tmp_path / "hosts"
    with (
        run_mirror(tmp_path, proxy=proxy_settings(hub.url, freshness="5m")) as mirror,
        run_containerd(tmp_path / "containerd") as containerd,
    ):
        write_hosts_toml(hosts, "docker.io", mirror.url)
        containerd.pull("docker.io/library/app:1", hosts_dir=hosts)
        mark = log_mark(hub)
        containerd.remove_image("docker.io/library/app:1")
        containerd.pull("docker.io/library/app:1", hosts_dir=hosts)
        assert requests_since(hub, mark) == []
