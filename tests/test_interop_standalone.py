"""mirror as a standalone registry: a real `mirror serve` process driven by real clients.

Interop: each image is built as an OCI layout of real gzip'd tar layers, pushed with
skopeo into mirror and into Debian's `docker-registry` (CNCF Distribution), both on
loopback; the two registries must store and serve the same bytes under the same digests.
Then the maintenance modes (read-only, upload purging) and malformed requests, which must
all be answered as client errors while the server stays healthy.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import skopeo
from tests.support.distribution import RegistryProcess, run_reference_registry
from tests.support.fsck import (
    MANIFEST_ACCEPT,
    REPOSITORIES_DIR,
    assert_layout_has_image,
    check_registry,
    error_codes,
    sha256_digest,
)
from tests.support.images import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_CONFIG,
    OCI_MANIFEST,
    BuiltImage,
    build_image,
    build_index,
    layout_digest,
)
from tests.support.mirrorproc import MirrorProcess, run_mirror
from tests.support.processes import wait_until

interop = pytest.mark.interop

KiB = 1024
MiB = 1024 * KiB
JSON_TYPE = {"Content-Type": OCI_MANIFEST}
Registry = MirrorProcess | RegistryProcess


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MirrorProcess]:
    with run_mirror(tmp_path_factory.mktemp("mirror")) as process:
        yield process


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryProcess]:
    with run_reference_registry(tmp_path_factory.mktemp("reference")) as process:
        yield process


def head_digest(registry: Registry, repository: str, reference: str) -> str:
    response = httpx.head(
        f"{registry.url}/v2/{repository}/manifests/{reference}",
        headers={"Accept": MANIFEST_ACCEPT},
        trust_env=False,
    )
    assert response.status_code == 200, (registry.url, repository, reference)
    return response.headers["Docker-Content-Digest"]


def push_everywhere(image: BuiltImage, repository: str, tag: str, *registries: Registry) -> None:
    many = bool(image.children)
    for registry in registries:
        skopeo.copy(image.source_ref, registry.ref(repository, tag), all_images=many)


def assert_same_everywhere(
    image: BuiltImage, repository: str, tag: str, *registries: Registry
) -> None:
    """Every registry serves `image`'s exact manifest bytes under its digest."""
    for registry in registries:
        assert head_digest(registry, repository, tag) == image.digest
        assert skopeo.inspect(registry.ref(repository, tag), raw=True) == image.manifest
        for child in image.children:
            raw = skopeo.inspect(registry.ref(repository, child.digest), raw=True)
            assert raw == child.manifest


@interop
def test_oci_image_round_trip_matches_the_reference_registry(
    tmp_path: Path, mirror: MirrorProcess, reference: RegistryProcess
) -> None:
    # compresslevel 6: real deflate streams, not just stored gzip blocks.
    image = build_image(tmp_path / "src", layers=[300 * KiB, 10, 0], compresslevel=6)
    for tag in ("v1", "v2", "latest"):
        push_everywhere(image, "interop/oci", tag, mirror, reference)

    assert_same_everywhere(image, "interop/oci", "v1", mirror, reference)
    summary = skopeo.inspect(mirror.ref("interop/oci", "v1"))
    assert summary["Digest"] == image.digest
    assert summary["Layers"] == [layer.digest for layer in image.layers]
    for registry in (mirror, reference):
        tags = skopeo.list_tags(f"docker://{registry.host}/interop/oci")
        assert sorted(tags) == ["latest", "v1", "v2"]

    skopeo.copy(mirror.ref("interop/oci", "v1"), f"oci:{tmp_path / 'back'}:v1")
    assert_layout_has_image(tmp_path / "back", "v1", image)
    skopeo.copy(mirror.ref("interop/oci", image.digest), f"oci:{tmp_path / 'by-digest'}:d")
    assert_layout_has_image(tmp_path / "by-digest", "d", image)

    for registry in (mirror, reference):
        report = check_registry(registry.url, page_size=1)
        report.assert_clean()
        assert report.tags["interop/oci"] == dict.fromkeys(("latest", "v1", "v2"), image.digest)
        assert {b.digest for b in image.blobs} <= report.blobs.keys()


@interop
def test_multi_arch_index_copied_with_all(
    tmp_path: Path, mirror: MirrorProcess, reference: RegistryProcess
) -> None:
    index = build_index(tmp_path / "src", layers=[200 * KiB, 5], seed="multi")
    push_everywhere(index, "interop/multi", "v1", mirror, reference)

    assert_same_everywhere(index, "interop/multi", "v1", mirror, reference)
    back = tmp_path / "back"
    skopeo.copy(mirror.ref("interop/multi", "v1"), f"oci:{back}:v1", all_images=True)
    assert_layout_has_image(back, "v1", index)


@interop
def test_docker_schema2_image_and_manifest_list(
    tmp_path: Path, mirror: MirrorProcess, reference: RegistryProcess
) -> None:
    image = build_image(tmp_path / "src", layers=[100 * KiB], media="docker", tag="s2")
    listing = build_index(tmp_path / "src", layers=[50 * KiB], media="docker", tag="list")
    push_everywhere(image, "interop/docker", "s2", mirror, reference)
    push_everywhere(listing, "interop/docker", "list", mirror, reference)

    assert_same_everywhere(image, "interop/docker", "s2", mirror, reference)
    assert_same_everywhere(listing, "interop/docker", "list", mirror, reference)
    for tag, media_type, built in (
        ("s2", DOCKER_MANIFEST, image),
        ("list", DOCKER_MANIFEST_LIST, listing),
    ):
        response = httpx.get(
            f"{mirror.url}/v2/interop/docker/manifests/{tag}",
            headers={"Accept": media_type},
            trust_env=False,
        )
        assert response.headers["Content-Type"] == media_type
        assert response.headers["Docker-Content-Digest"] == built.digest
        assert response.content == built.manifest

    # skopeo converts OCI to schema 2 itself; both registries must keep its bytes as sent.
    oci = build_image(tmp_path / "src", layers=[10 * KiB], seed="convert", tag="oci")
    digests = set()
    for registry in (mirror, reference):
        digest_file = tmp_path / f"digest-{registry.host}"
        skopeo.copy(
            oci.source_ref,
            registry.ref("interop/converted", "v1"),
            format="v2s2",
            extra_args=["--digestfile", str(digest_file)],
        )
        digests.add(digest_file.read_text())
        assert head_digest(registry, "interop/converted", "v1") == digest_file.read_text()
    assert len(digests) == 1 and oci.digest not in digests


@interop
def test_registry_to_registry_copies_keep_digests(
    tmp_path: Path, mirror: MirrorProcess, reference: RegistryProcess
) -> None:
    image = build_image(tmp_path / "src", layers=[150 * KiB], seed="r2r", tag="img")
    index = build_index(tmp_path / "src", layers=[20 * KiB], seed="r2r", tag="idx")
    for built, tag in ((image, "img"), (index, "idx")):
        many = bool(built.children)
        skopeo.copy(built.source_ref, mirror.ref("r2r/origin", tag), all_images=many)
        skopeo.copy(mirror.ref("r2r/origin", tag), reference.ref("r2r/copy", tag), all_images=many)
        skopeo.copy(reference.ref("r2r/copy", tag), mirror.ref("r2r/back", tag), all_images=many)

        assert_same_everywhere(built, "r2r/origin", tag, mirror)
        assert_same_everywhere(built, "r2r/copy", tag, reference)
        assert_same_everywhere(built, "r2r/back", tag, mirror)
        out = tmp_path / f"out-{tag}"
        skopeo.copy(mirror.ref("r2r/back", tag), f"oci:{out}:{tag}", all_images=many)
        assert_layout_has_image(out, tag, built)
    report = check_registry(mirror.url)
    report.assert_clean()
    assert {"r2r/origin", "r2r/back"} <= set(report.repositories)


@interop
def test_read_only_mode_serves_pulls_and_refuses_pushes(tmp_path: Path) -> None:
    image = build_image(tmp_path / "src", layers=[64 * KiB], seed="ro")
    other = build_image(tmp_path / "src", layers=[64 * KiB], seed="ro-other", tag="other")
    root = tmp_path / "root"
    with run_mirror(tmp_path, root=root, name="writable") as writable:
        skopeo.copy(image.source_ref, writable.ref("ro/app", "v1"))

    storage = {
        "filesystem": {"rootdirectory": str(root)},
        "delete": {"enabled": True},
        "maintenance": {"readonly": {"enabled": True}},
    }
    with run_mirror(tmp_path, root=root, name="readonly", extra={"storage": storage}) as ro:
        skopeo.copy(ro.ref("ro/app", "v1"), f"oci:{tmp_path / 'pulled'}:v1")
        assert_layout_has_image(tmp_path / "pulled", "v1", image)
        assert skopeo.list_tags(f"docker://{ro.host}/ro/app") == ["v1"]

        with pytest.raises(skopeo.SkopeoError) as new_image:
            skopeo.copy(other.source_ref, ro.ref("ro/app", "v2"))
        # The blobs already stored are skipped, so this push fails at the manifest PUT.
        with pytest.raises(skopeo.SkopeoError) as new_tag:
            skopeo.copy(image.source_ref, ro.ref("ro/app", "v3"))
        assert "initiating layer upload" in new_image.value.stderr
        assert "uploading manifest v3" in new_tag.value.stderr
        for failure in (new_image.value, new_tag.value):
            assert "unsupported: the registry is in read-only mode" in failure.stderr

        with httpx.Client(base_url=ro.url, trust_env=False) as client:
            refused = [
                client.post("/v2/ro/app/blobs/uploads/"),
                client.delete(f"/v2/ro/app/manifests/{image.digest}"),
                client.delete(f"/v2/ro/app/blobs/{image.layers[0].digest}"),
            ]
            for response in refused:
                assert response.status_code == 405
                assert error_codes(response) == ["UNSUPPORTED"]
            assert 'status="500"' not in client.get("/metrics").text
        assert skopeo.list_tags(f"docker://{ro.host}/ro/app") == ["v1"]
        assert layout_digest(tmp_path / "pulled", "v1") == image.digest
        check_registry(ro.url).assert_clean()


def purging_storage(root: Path) -> dict[str, Any]:
    return {
        "filesystem": {"rootdirectory": str(root)},
        "maintenance": {"uploadpurging": {"enabled": True, "age": "2s", "interval": "1s"}},
    }


def push_small_image(client: httpx.Client, name: str, tag: str) -> tuple[str, bytes]:
    """Push a config blob and a manifest with no layers over HTTP; (config digest, manifest)."""
    config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    config_digest = sha256_digest(config)
    pushed = client.post(
        f"/v2/{name}/blobs/uploads/", params={"digest": config_digest}, content=config
    )
    assert pushed.status_code == 201
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)},
            "layers": [],
        }
    ).encode()
    put = client.put(
        f"/v2/{name}/manifests/{tag}", content=manifest, headers={"Content-Type": OCI_MANIFEST}
    )
    assert put.status_code == 201
    return config_digest, manifest


def test_abandoned_upload_is_purged_and_committed_content_stays(tmp_path: Path) -> None:
    root = tmp_path / "root"
    with (
        run_mirror(tmp_path, root=root, extra={"storage": purging_storage(root)}) as registry,
        httpx.Client(base_url=registry.url, timeout=10.0, trust_env=False) as client,
    ):
        config_digest, manifest = push_small_image(client, "purge/app", "v1")
        started = time.monotonic()
        location = client.post("/v2/purge/app/blobs/uploads/").headers["Location"]
        assert client.patch(location, content=b"x" * 1000).headers["Range"] == "0-999"
        session = root / REPOSITORIES_DIR / "purge/app/_uploads" / location.rsplit("/", 1)[1]
        assert session.is_dir()

        # Purges run every second; a session younger than `age` (2 s) must survive them.
        time.sleep(max(0.0, started + 1.2 - time.monotonic()))
        assert client.get(location).status_code == 204
        wait_until(
            lambda: client.get(location).status_code == 404,
            8,
            what="the abandoned upload to be purged",
        )
        assert time.monotonic() - started >= 2.0
        gone = client.patch(location, content=b"more")
        assert gone.status_code == 404
        assert error_codes(gone) == ["BLOB_UPLOAD_UNKNOWN"]
        assert error_codes(client.get(location)) == ["BLOB_UPLOAD_UNKNOWN"]
        assert not session.exists()

        assert client.get("/v2/purge/app/manifests/v1").content == manifest
        blob = client.get(f"/v2/purge/app/blobs/{config_digest}")
        assert sha256_digest(blob.content) == config_digest
        report = check_registry(registry.url)
        report.assert_clean()
        assert report.tags == {"purge/app": {"v1": sha256_digest(manifest)}}


def send_truncated(
    registry: MirrorProcess, method: str, target: str, headers: dict[str, str], sent: bytes
) -> None:
    """Send a request whose body is shorter than its Content-Length, then hang up."""
    host, port = registry.host.rsplit(":", 1)
    head = [f"{method} {target} HTTP/1.1", f"Host: {registry.host}"]
    head += [f"{key}: {value}" for key, value in headers.items()]
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + sent)


def raw_exchange(registry: MirrorProcess, request: bytes) -> bytes:
    """Send raw bytes, return whatever the server answers before it closes."""
    host, port = registry.host.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@dataclass(frozen=True)
class Bad:
    """A malformed request and the client error it must get."""

    method: str
    path: str
    status: int
    code: str
    content: bytes | Iterator[bytes] | None = None
    headers: dict[str, str] = field(default_factory=dict)


def bad_requests(blob: str, location: str) -> list[Bad]:
    too_big = b"{" + b" " * (4 * MiB) + b"}"
    unknown_blob = json.dumps(
        {
            "schemaVersion": 2,
            "config": {"mediaType": OCI_CONFIG, "digest": f"sha256:{'1' * 64}", "size": 2},
            "layers": [],
        }
    ).encode()
    nested = b"[" * 100_000 + b"]" * 100_000
    nested_field = b'{"schemaVersion": 2, "annotations": ' + nested + b"}"
    uploads = "/v2/bad/blobs/uploads/"
    invalid_upload = "BLOB_UPLOAD_INVALID"
    return [
        Bad("GET", "/v2/UPPER/manifests/latest", 400, "NAME_INVALID"),
        Bad("GET", "/v2/a..b/tags/list", 400, "NAME_INVALID"),
        Bad("GET", f"/v2/{'a' * 256}/tags/list", 400, "NAME_INVALID"),
        Bad("POST", "/v2/%ff%00/blobs/uploads/", 400, "NAME_INVALID"),
        Bad("GET", "/v2/bad/manifests/bad%20tag!", 404, "MANIFEST_UNKNOWN"),
        Bad("PUT", "/v2/bad/manifests/bad%20tag!", 400, "TAG_INVALID", b"{}", JSON_TYPE),
        Bad("GET", "/v2/bad/blobs/sha256:xyz", 400, "DIGEST_INVALID"),
        Bad("GET", "/v2/bad/blobs/md5:0123", 400, "DIGEST_INVALID"),
        Bad("GET", f"/v2/bad/blobs/sha256:{'A' * 64}", 400, "DIGEST_INVALID"),
        Bad("DELETE", "/v2/bad/manifests/sha256:abc", 400, "DIGEST_INVALID"),
        Bad("GET", "/v2/bad/referrers/nodigest", 400, "DIGEST_INVALID"),
        Bad("POST", f"{uploads}?digest=sha256:00", 400, "DIGEST_INVALID", b"x"),
        Bad("POST", f"{uploads}?digest=sha256:{'3' * 64}", 400, "DIGEST_INVALID", b"abc"),
        Bad("PUT", "/v2/bad/manifests/big", 413, "MANIFEST_INVALID", too_big, JSON_TYPE),
        Bad("PUT", "/v2/bad/manifests/big", 413, "MANIFEST_INVALID", iter([too_big]), JSON_TYPE),
        Bad("PUT", "/v2/bad/manifests/junk", 400, "MANIFEST_INVALID", b"{nope", JSON_TYPE),
        Bad("PUT", "/v2/bad/manifests/junk", 400, "MANIFEST_INVALID", b"[]", JSON_TYPE),
        Bad("PUT", "/v2/bad/manifests/deep", 400, "MANIFEST_INVALID", nested, JSON_TYPE),
        Bad("PUT", "/v2/bad/manifests/deep", 400, "MANIFEST_INVALID", nested_field, JSON_TYPE),
        Bad("PUT", "/v2/bad/manifests/j", 400, "MANIFEST_BLOB_UNKNOWN", unknown_blob, JSON_TYPE),
        Bad("PUT", f"/v2/bad/manifests/sha256:{'2' * 64}", 400, "DIGEST_INVALID", unknown_blob),
        Bad("PATCH", location, 400, invalid_upload, b"abc", {"Content-Range": "bytes=oops"}),
        Bad("PATCH", location, 416, invalid_upload, b"abc", {"Content-Range": "7-9"}),
        Bad("PATCH", location, 400, invalid_upload, b"abc", {"Content-Range": "3-99"}),
        Bad("PATCH", location, 400, invalid_upload, b"abc", {"Content-Range": "9-2"}),
        Bad("PUT", f"{location}?digest=bogus", 400, "DIGEST_INVALID"),
        Bad("GET", f"{uploads}not-an-upload", 404, "BLOB_UPLOAD_UNKNOWN"),
        Bad("GET", "/v2/_catalog?n=lots", 400, "PAGINATION_NUMBER_INVALID"),
        Bad("GET", f"/v2/bad/blobs/{blob}", 416, "RANGE_INVALID", None, {"Range": "bytes=9999-"}),
        Bad("DELETE", uploads, 405, "UNSUPPORTED"),
        Bad("GET", "/v2/bad/nothing/here", 404, "NOT_FOUND"),
    ]


def test_bad_input_never_yields_a_500(tmp_path: Path) -> None:
    with (
        run_mirror(tmp_path) as registry,
        httpx.Client(base_url=registry.url, timeout=10.0, trust_env=False) as client,
    ):
        data = b"0123456789" * 100
        blob = sha256_digest(data)
        assert client.post(f"/v2/bad/blobs/uploads/?digest={blob}", content=data).status_code == 201
        location = client.post("/v2/bad/blobs/uploads/").headers["Location"]
        assert client.patch(location, content=b"abc").headers["Range"] == "0-2"

        requests = bad_requests(blob, location)
        for bad in requests:
            response = client.request(
                bad.method, bad.path, content=bad.content, headers=bad.headers
            )
            assert (response.status_code, error_codes(response)) == (bad.status, [bad.code]), bad
        assert client.get(location).headers["Range"] == "0-2"

        # Bodies cut short by a client that hangs up: nothing of them may be kept.
        unseen = sha256_digest(b"z" * MiB)
        length = {"Content-Length": str(MiB)}
        aborted = [
            ("PATCH", location, length),
            ("PUT", f"{location}?digest={blob}", length),
            ("POST", f"/v2/bad/blobs/uploads/?digest={unseen}", length),
            ("PUT", "/v2/bad/manifests/cut", {"Content-Length": "5000", **JSON_TYPE}),
        ]
        for number, (method, target, headers) in enumerate(aborted, start=1):
            send_truncated(registry, method, target, headers, b"z" * 1000)
            wait_for_metric(client, 'status="499"', number)
        assert client.get(location).headers["Range"] == "0-2"
        assert client.head(f"/v2/bad/blobs/{unseen}").status_code == 404
        assert client.get("/v2/bad/tags/list").status_code == 404

        for garbage in (
            b"NONSENSE\r\n\r\n",
            f"PATCH {location} HTTP/1.1\r\nHost: x\r\nContent-Length: lots\r\n\r\n".encode(),
            b"GET /v2/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\r\n",
        ):
            assert raw_exchange(registry, garbage).startswith(b"HTTP/1.1 400 ")

        assert client.get("/v2/").status_code == 200
        assert metric_total(client, 'status="500"') == 0
        assert metric_total(client, 'status="4') >= len(requests)
        assert "Traceback" not in registry.log_path.read_text()
        check_registry(registry.url).assert_clean()


def wait_for_metric(client: httpx.Client, label: str, at_least: float) -> None:
    wait_until(
        lambda: metric_total(client, label) >= at_least,
        10,
        what=f"{at_least} requests with {label}",
    )


def metric_total(client: httpx.Client, label: str) -> float:
    """Sum of the mirror_http_requests_total samples whose labels contain `label`."""
    total = 0.0
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("mirror_http_requests_total{") and label in line:
            total += float(line.rsplit(" ", 1)[1])
    return total
