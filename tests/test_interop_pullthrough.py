"""The pull-through mirror end to end, driven by the real clients that use one.

`mirror` runs as a process whose upstreams are CNCF Distribution (`docker-registry`)
processes on loopback: `hub` plays docker.io (the default upstream, selected by plain
names and by containerd's `?ns=docker.io`) and `ghcr` plays ghcr.io (`?ns=ghcr.io` or a
`ghcr.io/` path prefix). Each client is configured the way it is in production:

- containerd: `hosts.toml` mirror entries, driven by `ctr image pull --hosts-dir`;
- podman / CRI-O: a registries.conf `[[registry.mirror]]`, driven by skopeo;
- a Docker daemon with `registry-mirrors`: its exact requests, sent with httpx.

Every test checks the digests the client ends up with and, in the upstream's access log,
that the content came through the mirror (the mirror's User-Agent, once per blob).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mirror.registryhttp.client import USER_AGENT as MIRROR_USER_AGENT
from tests.support import skopeo
from tests.support.binaries import require_root
from tests.support.containerd import Containerd, run_containerd, write_hosts_toml
from tests.support.distribution import (
    RegistryProcess,
    count_blob_gets,
    count_requests,
    run_reference_registry,
)
from tests.support.images import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    BuiltImage,
    build_image,
    build_index,
    layout_digest,
)
from tests.support.mirrorproc import MirrorProcess, run_mirror
from tests.support.pullhelpers import (
    DOCKER_ACCEPT,
    DOCKER_USER_AGENT,
    HTTP_TIMEOUT,
    MiB,
    fetch_blob,
    layout_blobs,
    log_mark,
    proxy_settings,
    requests_since,
)

pytestmark = pytest.mark.interop


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[RegistryProcess]:
    with run_reference_registry(tmp_path / "hub") as registry:
        yield registry


@pytest.fixture
def ghcr(tmp_path: Path) -> Iterator[RegistryProcess]:
    with run_reference_registry(tmp_path / "ghcr") as registry:
        yield registry


@pytest.fixture
def mirror(tmp_path: Path, hub: RegistryProcess, ghcr: RegistryProcess) -> Iterator[MirrorProcess]:
    proxy = proxy_settings(hub.url, upstreams={"ghcr.io": ghcr.url})
    with run_mirror(tmp_path, proxy=proxy) as process:
        yield process


@pytest.fixture
def containerd(tmp_path: Path) -> Iterator[Containerd]:
    require_root("containerd")
    with run_containerd(tmp_path / "containerd") as daemon:
        yield daemon


def image_digests(image: BuiltImage) -> set[str]:
    return {image.digest, *(child.digest for child in image.children)} | {
        blob.digest for blob in image.blobs
    }


def listed_digest(containerd: Containerd, ref: str) -> str:
    """The target digest `ctr image list` reports for `ref`."""
    for line in containerd.ctr("image", "list").splitlines()[1:]:
        columns = line.split()
        if columns and columns[0] == ref:
            return columns[2]
    raise AssertionError(f"{ref} is not in ctr's image list")


def assert_only_mirror_fetched(registry: RegistryProcess, mark: int) -> None:
    served = requests_since(registry, mark)
    assert served, "the upstream was never asked"
    assert {entry.user_agent for entry in served} == {MIRROR_USER_AGENT}, served
    # The mirror dials the upstream with plain names: `ns` is a lookup key, not forwarded.
    assert all(entry.query == "" for entry in served), served


# -- containerd (hosts.toml) ---------------------------------------------------------


def test_containerd_pulls_a_docker_hub_image_through_the_mirror(
    tmp_path: Path, hub: RegistryProcess, mirror: MirrorProcess, containerd: Containerd
) -> None:
    image = build_image(tmp_path / "src", layers=[3 * MiB, 1000], media="docker", seed="ctr")
    skopeo.copy(image.source_ref, hub.ref("library/app", "1"))
    hosts = tmp_path / "hosts"
    write_hosts_toml(hosts, "docker.io", mirror.url)
    mark = log_mark(hub)

    containerd.pull("docker.io/library/app:1", hosts_dir=hosts)

    assert containerd.image_names() == ["docker.io/library/app:1"]
    assert listed_digest(containerd, "docker.io/library/app:1") == image.digest
    assert image_digests(image) <= containerd.content_digests()
    stored = containerd.ctr("content", "get", image.digest)
    assert hashlib.sha256(stored.encode()).hexdigest() == image.digest.removeprefix("sha256:")
    assert_only_mirror_fetched(hub, mark)
    for blob in image.blobs:
        assert count_blob_gets(hub.log_path, blob.digest, repository="library/app") == 1

    # A second node pulling the same image is served from the mirror's cache.
    containerd.remove_image("docker.io/library/app:1")
    assert containerd.content_digests() == set()
    containerd.pull("docker.io/library/app:1", hosts_dir=hosts)
    assert image_digests(image) <= containerd.content_digests()
    for blob in image.blobs:
        assert count_blob_gets(hub.log_path, blob.digest) == 1


def test_containerd_fetches_only_the_requested_platform(
    tmp_path: Path, hub: RegistryProcess, mirror: MirrorProcess, containerd: Containerd
) -> None:
    index = build_index(tmp_path / "src", layers=[2 * MiB, 500], seed="platforms")
    skopeo.copy(index.source_ref, hub.ref("library/multi", "1"), all_images=True)
    amd64, arm64 = index.children
    hosts = tmp_path / "hosts"
    write_hosts_toml(hosts, "docker.io", mirror.url)
    mark = log_mark(hub)

    containerd.pull("docker.io/library/multi:1", hosts_dir=hosts, platform="linux/arm64")

    assert listed_digest(containerd, "docker.io/library/multi:1") == index.digest
    content = containerd.content_digests()
    assert {index.digest, *image_digests(arm64)} <= content
    assert content.isdisjoint(image_digests(amd64))
    assert_only_mirror_fetched(hub, mark)
    assert count_requests(hub.log_path, "GET", f"/manifests/{arm64.digest}") == 1
    assert count_requests(hub.log_path, "GET", f"/manifests/{amd64.digest}") == 0
    for blob in arm64.blobs:
        assert count_blob_gets(hub.log_path, blob.digest) == 1
    for blob in amd64.blobs:
        assert count_blob_gets(hub.log_path, blob.digest) == 0


def test_containerd_ns_selects_the_second_upstream(
    tmp_path: Path,
    hub: RegistryProcess,
    ghcr: RegistryProcess,
    mirror: MirrorProcess,
    containerd: Containerd,
) -> None:
    wanted = build_image(tmp_path / "src", layers=[MiB], seed="ghcr")
    decoy = build_image(tmp_path / "src", layers=[MiB], seed="hub", tag="decoy")
    skopeo.copy(wanted.source_ref, ghcr.ref("org/tool", "2"))
    # The same name on the default upstream: only ?ns=ghcr.io tells them apart.
    skopeo.copy(decoy.source_ref, hub.ref("org/tool", "2"))
    hosts = tmp_path / "hosts"
    write_hosts_toml(hosts, "ghcr.io", mirror.url)
    write_hosts_toml(hosts, "docker.io", mirror.url)
    hub_mark, ghcr_mark = log_mark(hub), log_mark(ghcr)

    containerd.pull("ghcr.io/org/tool:2", hosts_dir=hosts)

    assert listed_digest(containerd, "ghcr.io/org/tool:2") == wanted.digest
    assert image_digests(wanted) <= containerd.content_digests()
    assert_only_mirror_fetched(ghcr, ghcr_mark)
    assert requests_since(hub, hub_mark) == []

    containerd.pull("docker.io/org/tool:2", hosts_dir=hosts)
    assert listed_digest(containerd, "docker.io/org/tool:2") == decoy.digest
    assert_only_mirror_fetched(hub, hub_mark)


# -- podman / CRI-O (registries.conf) --------------------------------------------------


def test_skopeo_pulls_through_a_registries_conf_mirror(
    tmp_path: Path, hub: RegistryProcess, mirror: MirrorProcess
) -> None:
    image = build_image(tmp_path / "src", layers=[2 * MiB, 300, 7000], seed="skopeo")
    skopeo.copy(image.source_ref, hub.ref("ns/img", "v1"))
    conf = skopeo.registries_conf(
        tmp_path / "registries.conf", prefix=hub.host, mirror_location=mirror.host
    )
    mark = log_mark(hub)

    for attempt in range(2):
        layout = tmp_path / f"pulled-{attempt}"
        # insecure=False: plain HTTP comes from registries.conf, as for podman.
        result = skopeo.copy(
            f"docker://{hub.host}/ns/img:v1",
            f"oci:{layout}:v1",
            registries_conf=conf,
            insecure=False,
            debug=True,
        )
        tried = [line for line in result.stderr.decode().splitlines() if "Trying to access" in line]
        assert tried and all(mirror.host in line for line in tried), tried
        assert layout_digest(layout, "v1") == image.digest
        blobs = layout_blobs(layout)
        assert all(name == actual for name, actual in blobs.items())
        assert {blob.digest for blob in image.blobs} <= set(blobs)

    # skopeo never reached the origin (its requests would carry skopeo's User-Agent), and
    # the second pull cost the upstream no blob download.
    assert_only_mirror_fetched(hub, mark)
    for blob in image.blobs:
        assert count_blob_gets(hub.log_path, blob.digest) == 1


def test_skopeo_mirror_location_with_a_registry_path_prefix(
    tmp_path: Path, ghcr: RegistryProcess, mirror: MirrorProcess
) -> None:
    image = build_image(tmp_path / "src", layers=[MiB], seed="prefix")
    skopeo.copy(image.source_ref, ghcr.ref("org/tool", "3"))
    conf = skopeo.registries_conf(
        tmp_path / "registries.conf", prefix="ghcr.io", mirror_location=f"{mirror.host}/ghcr.io"
    )
    mark = log_mark(ghcr)

    skopeo.copy("docker://ghcr.io/org/tool:3", f"oci:{tmp_path / 'out'}:3", registries_conf=conf)

    assert layout_digest(tmp_path / "out", "3") == image.digest
    assert_only_mirror_fetched(ghcr, mark)
    for blob in image.blobs:
        assert count_blob_gets(ghcr.log_path, blob.digest, repository="org/tool") == 1


# -- Docker daemon (registry-mirrors) ----------------------------------------------


def docker_get(client: httpx.Client, path: str, *, manifest: bool = False) -> httpx.Response:
    headers = [("User-Agent", DOCKER_USER_AGENT)]
    if manifest:
        # Docker sends one Accept header line per type.
        headers += [("Accept", media) for media in DOCKER_ACCEPT]
    return client.get(path, headers=headers)


def test_docker_daemon_requests_and_the_library_mapping(
    tmp_path: Path, hub: RegistryProcess, mirror: MirrorProcess
) -> None:
    image = build_image(tmp_path / "src", layers=[2 * MiB, 100], media="docker", seed="docker")
    skopeo.copy(image.source_ref, hub.ref("library/app", "3.1"))
    mark = log_mark(hub)

    with httpx.Client(base_url=mirror.url, timeout=HTTP_TIMEOUT, trust_env=False) as client:
        ping = docker_get(client, "/v2/")
        assert ping.status_code == 200
        assert ping.headers["Docker-Distribution-API-Version"] == "registry/2.0"

        for name in ("library/app", "app"):
            response = docker_get(client, f"/v2/{name}/manifests/3.1", manifest=True)
            assert response.status_code == 200, response.text
            assert response.content == image.manifest
            assert response.headers["Content-Type"] == DOCKER_MANIFEST
            assert response.headers["Docker-Content-Digest"] == image.digest
            assert "Warning" not in response.headers
            manifest = json.loads(response.content)
            wanted = [manifest["config"], *manifest["layers"]]
            for descriptor in wanted:
                got = fetch_blob(
                    f"{mirror.url}/v2/{name}/blobs/{descriptor['digest']}",
                    headers={"User-Agent": DOCKER_USER_AGENT},
                )
                assert got.status == 200
                assert (got.digest, got.size) == (descriptor["digest"], descriptor["size"])
                assert got.headers["docker-content-digest"] == descriptor["digest"]

    # `app` and `library/app` are one cached repository: the upstream saw library/app
    # only, and each blob once.
    served = requests_since(hub, mark)
    assert_only_mirror_fetched(hub, mark)
    assert all(entry.path.startswith("/v2/library/app/") for entry in served), served
    for blob in image.blobs:
        assert count_blob_gets(hub.log_path, blob.digest) == 1
    assert count_requests(hub.log_path, "GET", "/v2/library/app/manifests/3.1") == 1


def test_docker_daemon_pulls_one_platform_of_a_manifest_list(
    tmp_path: Path, hub: RegistryProcess, mirror: MirrorProcess
) -> None:
    listing = build_index(tmp_path / "src", layers=[MiB], media="docker", seed="list")
    skopeo.copy(listing.source_ref, hub.ref("library/multi", "2"), all_images=True)
    amd64, arm64 = listing.children
    mark = log_mark(hub)

    with httpx.Client(base_url=mirror.url, timeout=HTTP_TIMEOUT, trust_env=False) as client:
        top = docker_get(client, "/v2/multi/manifests/2", manifest=True)
        assert top.status_code == 200, top.text
        assert top.content == listing.manifest
        assert top.headers["Content-Type"] == DOCKER_MANIFEST_LIST
        assert top.headers["Docker-Content-Digest"] == listing.digest
        chosen = next(
            entry["digest"]
            for entry in json.loads(top.content)["manifests"]
            if entry["platform"]["architecture"] == "amd64"
        )
        assert chosen == amd64.digest
        child = docker_get(client, f"/v2/multi/manifests/{chosen}", manifest=True)
        assert child.status_code == 200, child.text
        assert child.content == amd64.manifest
        assert child.headers["Docker-Content-Digest"] == amd64.digest
    for blob in amd64.blobs:
        got = fetch_blob(f"{mirror.url}/v2/multi/blobs/{blob.digest}")
        assert (got.status, got.digest, got.size) == (200, blob.digest, blob.size)

    assert_only_mirror_fetched(hub, mark)
    for blob in amd64.blobs:
        assert count_blob_gets(hub.log_path, blob.digest) == 1
    for blob in arm64.blobs:
        assert count_blob_gets(hub.log_path, blob.digest) == 0
    assert count_requests(hub.log_path, "GET", f"/manifests/{arm64.digest}") == 0
