"""The real-client test helpers work: image builder, processes, docker-registry, skopeo, ctr.

The registry under test here is CNCF Distribution (`docker-registry`); the helpers take any
registry URL, so the same calls drive `mirror` in its own interop tests.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import socket
import sys
import tarfile
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import skopeo
from tests.support.binaries import in_ci, require_binary, require_root
from tests.support.containerd import CtrError, run_containerd, write_hosts_toml
from tests.support.distribution import (
    RegistryProcess,
    access_log,
    count_blob_gets,
    count_requests,
    run_reference_registry,
    serve_on_first_free_port,
    settle_log,
)
from tests.support.images import (
    DOCKER_CONFIG,
    DOCKER_LAYER_GZIP,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    build_image,
    build_index,
    layout_digest,
    sha256_file,
    write_random_blob,
)
from tests.support.processes import (
    PROBE_USER_AGENT,
    ProcessStartError,
    free_port,
    log_tail,
    running,
    wait_for_http,
    wait_until,
)

interop = pytest.mark.interop
MiB = 1 << 20


def test_image_layout_blobs_config_and_diff_ids_are_real(tmp_path: Path) -> None:
    image = build_image(tmp_path / "layout", layers=[3 * MiB + 5, 0, 700], file_size=MiB)

    assert json.loads((tmp_path / "layout" / "oci-layout").read_text()) == {
        "imageLayoutVersion": "1.0.0"
    }
    assert layout_digest(image.layout, "latest") == image.digest
    assert image.media_type == OCI_MANIFEST
    assert sha256_file(image.layout / "blobs" / "sha256" / image.digest[7:]) == image.digest
    for blob in image.blobs:
        assert sha256_file(blob.path) == blob.digest
        assert blob.path.stat().st_size == blob.size
    assert image.config is not None
    manifest = json.loads(image.manifest)
    assert manifest["config"] == image.config.descriptor()
    assert [layer["mediaType"] for layer in manifest["layers"]] == [OCI_LAYER_GZIP] * 3
    config = json.loads(image.config.path.read_bytes())
    assert (config["os"], config["architecture"]) == ("linux", "amd64")
    assert len(config["history"]) == 3
    for layer, diff_id, payload in zip(
        image.layers, config["rootfs"]["diff_ids"], [3 * MiB + 5, 0, 700], strict=True
    ):
        plain = gzip.decompress(layer.path.read_bytes())
        assert f"sha256:{hashlib.sha256(plain).hexdigest()}" == diff_id
        with tarfile.open(layer.path) as tar:
            sizes = [member.size for member in tar.getmembers() if member.isfile()]
        assert sum(sizes) == payload
        assert max(sizes, default=0) <= MiB
    assert image.total_size == image.size + sum(blob.size for blob in image.blobs)


def test_builds_are_deterministic_seeded_and_tags_accumulate(tmp_path: Path) -> None:
    first = build_image(tmp_path / "a", layers=[5000, 6000], seed=7)
    again = build_image(tmp_path / "b", layers=[5000, 6000], seed=7)
    other = build_image(tmp_path / "a", layers=[5000, 6000], seed=8, tag="other")

    assert first.digest == again.digest
    assert [b.digest for b in first.blobs] == [b.digest for b in again.blobs]
    assert not {b.digest for b in first.layers} & {b.digest for b in other.layers}
    newest = build_image(tmp_path / "a", layers=[10], tag="latest", seed=2)
    assert len(json.loads((tmp_path / "a" / "index.json").read_text())["manifests"]) == 2
    assert layout_digest(tmp_path / "a", "latest") == newest.digest
    assert layout_digest(tmp_path / "a", "other") == other.digest


def test_large_layer_streams_to_disk_quickly(tmp_path: Path) -> None:
    tracemalloc.start()
    started = time.monotonic()
    try:
        image = build_image(tmp_path / "big", layers=[128 * MiB])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    elapsed = time.monotonic() - started

    assert image.layers[0].size > 128 * MiB
    assert peak < 16 * MiB, f"builder held {peak} bytes in memory"
    assert elapsed < 30, f"128 MiB layer took {elapsed:.1f}s"


def test_index_children_are_distinct_platform_images(tmp_path: Path) -> None:
    index = build_index(tmp_path / "layout", layers=[100, 200])

    assert index.media_type == OCI_INDEX and index.config is None
    doc = json.loads(index.manifest)
    assert [m["platform"] for m in doc["manifests"]] == [
        {"architecture": "amd64", "os": "linux"},
        {"architecture": "arm64", "os": "linux", "variant": "v8"},
    ]
    amd64, arm64 = index.children
    assert {b.digest for b in amd64.blobs}.isdisjoint(b.digest for b in arm64.blobs)
    assert arm64.config is not None
    assert json.loads(arm64.config.path.read_bytes())["variant"] == "v8"
    assert len(index.blobs) == 6
    assert index.total_size == index.size + amd64.size + arm64.size + sum(
        b.size for b in index.blobs
    )
    with pytest.raises(ValueError):
        _ = amd64.oci_ref


def test_docker_media_and_dir_view(tmp_path: Path) -> None:
    image = build_image(tmp_path / "layout", layers=[100], media="docker", tag="d")
    manifest = json.loads(image.manifest)

    assert image.media_type == manifest["mediaType"] == DOCKER_MANIFEST
    assert manifest["config"]["mediaType"] == DOCKER_CONFIG
    assert manifest["layers"][0]["mediaType"] == DOCKER_LAYER_GZIP
    assert image.source_ref == f"dir:{image.dir_path}"
    assert (image.dir_path / "manifest.json").read_bytes() == image.manifest
    for blob in image.blobs:
        assert (image.dir_path / blob.hex).samefile(blob.path)

    listing = build_index(tmp_path / "layout", layers=[100], media="docker", tag="list")
    assert listing.media_type == DOCKER_MANIFEST_LIST
    for child in listing.children:
        assert (listing.dir_path / f"{child.digest[7:]}.manifest.json").read_bytes() == (
            child.manifest
        )


def test_builder_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="layer size"):
        build_image(tmp_path / "a", layers=[-1])
    with pytest.raises(ValueError, match="platform"):
        build_image(tmp_path / "b", platform=("linux",))
    with pytest.raises(ValueError, match="at least one platform"):
        build_index(tmp_path / "c", platforms=[])


def test_random_blob_file(tmp_path: Path) -> None:
    blob = write_random_blob(tmp_path / "blob", 3 * MiB + 1, seed=5)
    same = write_random_blob(tmp_path / "same", 3 * MiB + 1, seed=5)

    assert blob.size == (tmp_path / "blob").stat().st_size == 3 * MiB + 1
    assert sha256_file(blob.path) == blob.digest == same.digest
    assert write_random_blob(tmp_path / "other", 3 * MiB + 1, seed=6).digest != blob.digest


def test_running_waits_for_http_and_stops_the_process(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    cmd = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)]
    with running(cmd, log_path=tmp_path / "http.log", cwd=tmp_path, ready_url=url) as proc:
        assert httpx.get(url).status_code == 200
    assert proc.returncode is not None
    with pytest.raises(httpx.TransportError):
        httpx.get(url, timeout=1)


def test_running_reports_the_log_tail_when_start_fails(tmp_path: Path) -> None:
    script = "import os; print(os.environ['MARKER'], flush=True); raise SystemExit(3)"
    ready_url = f"http://127.0.0.1:{free_port()}/"
    with (
        pytest.raises(ProcessStartError, match=r"exit status 3(.|\n)*marker: cannot start"),
        running(
            [sys.executable, "-c", script],
            log_path=tmp_path / "fail.log",
            env={"MARKER": "marker: cannot start"},
            ready_url=ready_url,
        ),
    ):
        pytest.fail("must not get here")


def test_running_kills_a_process_that_ignores_sigterm(tmp_path: Path) -> None:
    log = tmp_path / "stubborn.log"
    script = (
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ignoring TERM', flush=True)\n"
        "time.sleep(60)\n"
    )
    started = time.monotonic()
    with running(
        [sys.executable, "-c", script],
        log_path=log,
        ready=lambda: "ignoring TERM" in log.read_text(),
        stop_grace=0.5,
    ) as proc:
        pass
    assert proc.returncode == -9
    assert time.monotonic() - started < 10


def test_waits_time_out_and_notice_early_exits(tmp_path: Path) -> None:
    with pytest.raises(TimeoutError):
        wait_for_http(f"http://127.0.0.1:{free_port('::1')}/", timeout=0.3)
    with pytest.raises(TimeoutError, match="the moon"):
        wait_until(lambda: False, 0.2, what="the moon")
    cmd = [sys.executable, "-c", "pass"]
    with (
        pytest.raises(ProcessStartError, match=r"exit status 0\): process exited before"),
        running(cmd, log_path=tmp_path / "sub" / "x.log", ready=lambda: False) as proc,
    ):
        pytest.fail(f"{proc} must not be ready")
    assert log_tail(tmp_path / "missing.log") == f"(no log at {tmp_path / 'missing.log'})"


def test_missing_binary_skips_locally_and_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    assert require_binary("sh").endswith("/sh")
    for value in ("", "0", "false"):
        monkeypatch.setenv("CI", value)
        assert not in_ci()
        with pytest.raises(pytest.skip.Exception, match="not found on PATH"):
            require_binary("no-such-binary-for-mirror-tests")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI is set"):
        require_binary("no-such-binary-for-mirror-tests")


def test_require_root_matches_the_effective_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    if os.geteuid() == 0:
        require_root("a root test")
    else:
        with pytest.raises(pytest.skip.Exception, match="needs root"):
            require_root("a root test")


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RegistryProcess]:
    with run_reference_registry(tmp_path / "registry") as running_registry:
        yield running_registry


@interop
def test_reference_registry_moves_past_taken_ports(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        with (
            pytest.raises(ProcessStartError, match="address already in use"),
            run_reference_registry(tmp_path / "a", port=busy, start_timeout=5),
        ):
            pytest.fail("must not start")
        spare = free_port()
        with serve_on_first_free_port(tmp_path / "b", [busy, spare]) as reg:
            assert reg.url == f"http://127.0.0.1:{spare}"
            response = httpx.get(f"{reg.url}/v2/")
            assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"
            assert reg.config_path.exists() and reg.root.is_dir()
            settle_log(reg.log_path)
            assert count_requests(reg.log_path, "GET", "/v2/") == 1
            probes = access_log(reg.log_path, include_probes=True)
            assert len(probes) >= 2 and probes[0].user_agent == PROBE_USER_AGENT
    with pytest.raises(ValueError), serve_on_first_free_port(tmp_path / "c", []):
        pytest.fail("must not start")


def test_settle_log_gives_up_on_a_log_that_keeps_growing(tmp_path: Path) -> None:
    log = tmp_path / "busy.log"
    stop = threading.Event()

    def scribble() -> None:
        with log.open("a") as f:
            while not stop.wait(0.02):
                f.write("x\n")
                f.flush()

    writer = threading.Thread(target=scribble)
    writer.start()
    try:
        with pytest.raises(TimeoutError, match="still growing"):
            settle_log(log, quiet=0.2, timeout=0.5)
    finally:
        stop.set()
        writer.join()
    settle_log(log, quiet=0.1)


@interop
def test_access_log_counts_one_blob_get_per_pull(tmp_path: Path, registry: RegistryProcess) -> None:
    image = build_image(tmp_path / "src", layers=[4096, 8192])
    skopeo.copy(image.source_ref, registry.ref("count/me", "v1"))
    settle_log(registry.log_path)
    assert count_blob_gets(registry.log_path) == 0  # a push only HEADs blobs
    assert count_requests(registry.log_path, "PUT", "/count/me/manifests/v1", status=201) == 1

    skopeo.copy(registry.ref("count/me", "v1"), f"oci:{tmp_path / 'dst'}:v1")
    settle_log(registry.log_path)

    for blob in image.blobs:
        assert count_blob_gets(registry.log_path, blob.digest) == 1
        assert count_blob_gets(registry.log_path, blob.digest, repository="count/me") == 1
        assert count_blob_gets(registry.log_path, blob.digest, repository="other") == 0
    assert count_blob_gets(registry.log_path, status=200) == len(image.blobs)
    assert count_requests(registry.log_path, "GET", "/count/me/manifests/v1") == 1
    assert all(e.user_agent.startswith("skopeo/") for e in access_log(registry.log_path))


@interop
def test_reference_registry_as_pull_through_cache(tmp_path: Path) -> None:
    image = build_image(tmp_path / "src", layers=[4096])
    with (
        run_reference_registry(tmp_path / "upstream") as upstream,
        run_reference_registry(tmp_path / "proxy", proxy_remoteurl=upstream.url) as proxy,
    ):
        skopeo.copy(image.source_ref, upstream.ref("lib/app", "v1"))
        for attempt in range(2):
            skopeo.copy(proxy.ref("lib/app", "v1"), f"oci:{tmp_path / f'pull{attempt}'}:v1")
            settle_log(upstream.log_path)
            settle_log(proxy.log_path)
            for blob in image.blobs:
                # Distribution 2.8 fetches a cold blob twice: once for the client, once
                # for its background store; afterwards it serves it locally.
                assert count_blob_gets(upstream.log_path, blob.digest) == 2
                assert count_blob_gets(proxy.log_path, blob.digest) == attempt + 1


@interop
def test_skopeo_round_trip_keeps_the_digest_and_lists_tags(
    tmp_path: Path, registry: RegistryProcess
) -> None:
    image = build_image(tmp_path / "src", layers=[MiB, 10])
    skopeo.copy(image.source_ref, registry.ref("round/trip", "v1"))
    skopeo.copy(registry.ref("round/trip", "v1"), f"oci:{tmp_path / 'back'}:v1")

    assert layout_digest(tmp_path / "back", "v1") == image.digest
    assert skopeo.inspect(registry.ref("round/trip", "v1"), raw=True) == image.manifest
    summary = skopeo.inspect(registry.ref("round/trip", image.digest))
    assert summary["Digest"] == image.digest
    assert summary["Layers"] == [layer.digest for layer in image.layers]
    for blob in image.blobs:
        assert (tmp_path / "back" / "blobs" / "sha256" / blob.hex).exists()

    for tag in ("v2", "latest"):
        skopeo.copy(image.source_ref, registry.ref("round/trip", tag))
    tags = skopeo.list_tags(f"docker://{registry.host}/round/trip")
    assert sorted(tags) == ["latest", "v1", "v2"]
    with pytest.raises(skopeo.SkopeoError, match="manifest unknown") as caught:
        skopeo.copy(registry.ref("no/such", "v1"), f"oci:{tmp_path / 'x'}:v1")
    assert caught.value.returncode != 0


@interop
def test_skopeo_copies_a_multi_arch_index_with_all(
    tmp_path: Path, registry: RegistryProcess
) -> None:
    index = build_index(tmp_path / "src", layers=[2048])
    skopeo.copy(index.source_ref, registry.ref("multi/arch", "v1"), all_images=True)
    skopeo.copy(registry.ref("multi/arch", "v1"), f"oci:{tmp_path / 'back'}:v1", all_images=True)

    assert skopeo.inspect(registry.ref("multi/arch", "v1"), raw=True) == index.manifest
    assert layout_digest(tmp_path / "back", "v1") == index.digest
    for blob in index.blobs:
        assert (tmp_path / "back" / "blobs" / "sha256" / blob.hex).exists()
    for child in index.children:
        raw = skopeo.inspect(registry.ref("multi/arch", child.digest), raw=True)
        assert raw == child.manifest


@interop
def test_skopeo_docker_schema2_image_and_list(tmp_path: Path, registry: RegistryProcess) -> None:
    image = build_image(tmp_path / "src", layers=[100], media="docker", tag="s2")
    listing = build_index(tmp_path / "src", layers=[100], media="docker", tag="list")
    skopeo.copy(image.source_ref, registry.ref("docker/s2", "v1"))
    skopeo.copy(listing.source_ref, registry.ref("docker/list", "v1"), all_images=True)

    response = httpx.get(
        f"{registry.url}/v2/docker/s2/manifests/v1", headers={"Accept": DOCKER_MANIFEST}
    )
    assert response.headers["Content-Type"] == DOCKER_MANIFEST
    assert response.headers["Docker-Content-Digest"] == image.digest
    assert response.content == image.manifest
    assert skopeo.inspect(registry.ref("docker/list", "v1"), raw=True) == listing.manifest


@interop
def test_skopeo_converts_formats_and_passes_extra_args(
    tmp_path: Path, registry: RegistryProcess
) -> None:
    image = build_image(tmp_path / "src", layers=[100])
    digest_file = tmp_path / "digest"
    skopeo.copy(
        image.source_ref,
        registry.ref("converted/img", "v1"),
        format="v2s2",
        extra_args=["--digestfile", str(digest_file)],
    )

    raw = skopeo.inspect(registry.ref("converted/img", "v1"), raw=True)
    assert json.loads(raw)["mediaType"] == DOCKER_MANIFEST
    assert digest_file.read_text() == f"sha256:{hashlib.sha256(raw).hexdigest()}"
    assert digest_file.read_text() != image.digest


@interop
def test_registries_conf_mirror_is_used_and_the_origin_is_never_dialled(
    tmp_path: Path, registry: RegistryProcess
) -> None:
    image = build_image(tmp_path / "src", layers=[500])
    skopeo.copy(image.source_ref, registry.ref("ns/img", "v1"))
    conf = skopeo.registries_conf(
        tmp_path / "registries.conf", prefix="example.test", mirror_location=registry.host
    )
    settle_log(registry.log_path)
    before = len(access_log(registry.log_path))

    # insecure=False: plain HTTP to the mirror must come from registries.conf alone.
    result = skopeo.copy(
        "docker://example.test/ns/img:v1",
        f"oci:{tmp_path / 'via-mirror'}:v1",
        registries_conf=conf,
        insecure=False,
        debug=True,
    )

    attempts = [line for line in result.stderr.decode().splitlines() if "Trying to access" in line]
    assert attempts and all(registry.host in line for line in attempts), attempts
    assert layout_digest(tmp_path / "via-mirror", "v1") == image.digest
    settle_log(registry.log_path)
    served = access_log(registry.log_path)[before:]
    assert any(e.method == "GET" and e.path == "/v2/ns/img/manifests/v1" for e in served)


@interop
def test_containerd_pulls_through_a_hosts_toml_mirror(
    tmp_path: Path, registry: RegistryProcess
) -> None:
    require_root("containerd")
    image = build_image(tmp_path / "src", layers=[3000, 100])
    skopeo.copy(image.source_ref, registry.ref("library/alpine", "1"))
    hosts = tmp_path / "hosts"
    write_hosts_toml(hosts, "docker.io", registry.url)
    settle_log(registry.log_path)
    before = len(access_log(registry.log_path))

    with run_containerd(tmp_path / "containerd") as containerd:
        containerd.pull("docker.io/library/alpine:1", hosts_dir=hosts)
        assert containerd.image_names() == ["docker.io/library/alpine:1"]
        assert {image.digest, *(b.digest for b in image.blobs)} <= containerd.content_digests()

    settle_log(registry.log_path)
    requests = access_log(registry.log_path)[before:]
    assert all(e.query == "ns=docker.io" for e in requests), requests
    assert [(e.method, e.path) for e in requests[:2]] == [
        ("HEAD", "/v2/library/alpine/manifests/1"),
        ("GET", f"/v2/library/alpine/manifests/{image.digest}"),
    ]
    for blob in image.blobs:
        assert count_blob_gets(registry.log_path, blob.digest) == 1


@interop
def test_containerd_pulls_one_platform_of_an_index(
    tmp_path: Path, registry: RegistryProcess
) -> None:
    require_root("containerd")
    index = build_index(tmp_path / "src", layers=[2000])
    skopeo.copy(index.source_ref, registry.ref("library/multi", "1"), all_images=True)
    hosts = tmp_path / "hosts"
    write_hosts_toml(hosts, "docker.io", registry.url)
    amd64, arm64 = index.children

    with run_containerd(tmp_path / "containerd") as containerd:
        containerd.pull("docker.io/library/multi:1", hosts_dir=hosts, platform="linux/arm64")
        content = containerd.content_digests()
        assert {index.digest, arm64.digest, *(b.digest for b in arm64.blobs)} <= content
        settle_log(registry.log_path)
        assert count_requests(registry.log_path, "GET", f"/manifests/{arm64.digest}?ns=") == 1
        assert count_requests(registry.log_path, "GET", f"/manifests/{amd64.digest}") == 0
        for blob in arm64.blobs:
            assert count_blob_gets(registry.log_path, blob.digest) == 1
        for blob in amd64.blobs:
            assert count_blob_gets(registry.log_path, blob.digest) == 0

        containerd.pull("docker.io/library/multi:1", hosts_dir=hosts, all_platforms=True)
        assert {b.digest for b in index.blobs} <= containerd.content_digests()
    settle_log(registry.log_path)
    for blob in index.blobs:
        assert count_blob_gets(registry.log_path, blob.digest) == 1


@interop
def test_containerd_override_path_and_other_registries(
    tmp_path: Path, registry: RegistryProcess
) -> None:
    require_root("containerd")
    image = build_image(tmp_path / "src", layers=[100])
    skopeo.copy(image.source_ref, registry.ref("org/app", "1"))
    hosts = tmp_path / "hosts"
    write_hosts_toml(hosts, "ghcr.io", f"{registry.url}/v2", override_path=True)
    write_hosts_toml(hosts, "registry.local:5000", registry.url)

    with run_containerd(tmp_path / "containerd") as containerd:
        containerd.pull("ghcr.io/org/app:1", hosts_dir=hosts)
        containerd.pull("registry.local:5000/org/app:1", hosts_dir=hosts)

    settle_log(registry.log_path)
    assert count_requests(registry.log_path, "HEAD", "/org/app/manifests/1?ns=ghcr.io") == 1
    # The port's colon arrives percent-encoded.
    assert count_requests(registry.log_path, "HEAD", "?ns=registry.local%3A5000") == 1


@interop
def test_containerd_direct_pull_and_server_fallback(
    tmp_path: Path, registry: RegistryProcess
) -> None:
    require_root("containerd")
    image = build_image(tmp_path / "src", layers=[100])
    skopeo.copy(image.source_ref, registry.ref("org/app", "1"))
    no_hosts = tmp_path / "no-hosts"
    no_hosts.mkdir()
    dead_mirror = tmp_path / "dead-mirror"
    dead = f"http://127.0.0.1:{free_port()}"
    write_hosts_toml(dead_mirror, "docker.io", dead, server=registry.url)
    settle_log(registry.log_path)
    before = len(access_log(registry.log_path))

    with run_containerd(tmp_path / "containerd") as containerd:
        containerd.pull(f"{registry.host}/org/app:1", hosts_dir=no_hosts, plain_http=True)
        settle_log(registry.log_path)
        direct = access_log(registry.log_path)[before:]
        containerd.remove_image(f"{registry.host}/org/app:1")
        assert containerd.image_names() == []
        assert containerd.content_digests() == set()

        containerd.pull("docker.io/org/app:1", hosts_dir=dead_mirror)
        with pytest.raises(CtrError, match="not found"):
            containerd.pull(f"{registry.host}/no/such:1", hosts_dir=no_hosts, plain_http=True)

    # Pulling from the registry itself sends no ns; the `server` fallback of docker.io
    # is a different host from the reference's, so containerd adds ns there too.
    assert direct and all(e.query == "" for e in direct)
    settle_log(registry.log_path)
    assert count_requests(registry.log_path, "HEAD", "/org/app/manifests/1?ns=docker.io") == 1
