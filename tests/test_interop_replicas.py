"""Two `mirror serve` replicas on one S3 bucket (moto) and the real Redis, no sticky
sessions: what one replica does, the other sees; an upload started on one is finished on
the other; 8 concurrent skopeo pulls of an uncached 256 MiB layer, dealt over both, make
one upstream GET (the upstream's own access log says so).

Each replica has a cache directory of its own (its default on an object store: a fresh
temporary directory), as two hosts would, so only Redis and the bucket are shared.
"""

from __future__ import annotations

import hashlib
import secrets
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import skopeo
from tests.support.distribution import count_blob_gets, run_reference_registry, settle_log
from tests.support.emulators import S3Emulator, unique_root
from tests.support.images import build_image, layout_digest
from tests.support.mirrorproc import MirrorProcess, run_mirror
from tests.support.pullhelpers import MiB, layout_blobs, proxy_settings, scrape_metrics
from tests.test_conformance import PLAIN_HTTP
from tests.test_interop_singleflight import (
    BigUpstream,
    assert_all_correct,
    big,  # noqa: F401 (fixture)
    blob_urls,
    redis_db,  # noqa: F401 (fixture)
)

pytestmark = [pytest.mark.interop, pytest.mark.redis, pytest.mark.slow]
CLIENTS = 8


def replicas(
    stack: ExitStack, tmp_path: Path, storage: dict[str, Any], **options: Any
) -> list[MirrorProcess]:
    return [
        stack.enter_context(
            run_mirror(tmp_path, name=name, storage=storage, env=PLAIN_HTTP, **options)
        )
        for name in ("replica-a", "replica-b")
    ]


@pytest.fixture
def bucket(s3_emulator: S3Emulator) -> dict[str, Any]:
    return {"s3": s3_emulator.params(s3_emulator.new_bucket(), rootdirectory=unique_root())}


def test_uploads_tags_catalog_and_deletes_across_replicas(
    tmp_path: Path,
    bucket: dict[str, Any],
    redis_db: dict[str, Any],  # noqa: F811
) -> None:
    data = secrets.token_bytes(3 * MiB + 5)
    digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
    with ExitStack() as stack:
        a, b = replicas(stack, tmp_path, bucket, redis=redis_db)
        with httpx.Client(trust_env=False, timeout=60) as client:
            started = client.post(f"{a.url}/v2/team/app/blobs/uploads/")
            assert started.status_code == 202
            path = started.headers["location"].removeprefix(a.url)
            first = client.patch(f"{a.url}{path}", content=data[:MiB])
            assert first.status_code == 202, first.text
            path = first.headers["location"].removeprefix(a.url)
            # The next chunk and the commit go to the other replica.
            second = client.patch(
                f"{b.url}{path}",
                content=data[MiB : 2 * MiB],
                headers={"Content-Range": f"{MiB}-{2 * MiB - 1}"},
            )
            assert second.status_code == 202, second.text
            assert client.get(f"{a.url}{path}").headers["range"] == f"0-{2 * MiB - 1}"
            done = client.put(f"{b.url}{path}?digest={digest}", content=data[2 * MiB :])
            assert done.status_code == 201, done.text
            fetched = client.get(f"{a.url}/v2/team/app/blobs/{digest}", follow_redirects=True)
            assert fetched.content == data

            config = b"{}"
            config_digest = f"sha256:{hashlib.sha256(config).hexdigest()}"
            put = client.post(f"{b.url}/v2/team/app/blobs/uploads/?digest={config_digest}",
                              content=config)  # fmt: skip
            assert put.status_code == 201, put.text
            manifest = (
                '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",'
                f'"config":{{"mediaType":"application/vnd.oci.image.config.v1+json",'
                f'"digest":"{config_digest}","size":2}},'
                f'"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar",'
                f'"digest":"{digest}","size":{len(data)}}}]}}'
            ).encode()
            headers = {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
            tagged = client.put(f"{a.url}/v2/team/app/manifests/v1", content=manifest,
                                headers=headers)  # fmt: skip
            assert tagged.status_code == 201, tagged.text
            assert client.get(f"{b.url}/v2/team/app/tags/list").json()["tags"] == ["v1"]
            assert "team/app" in client.get(f"{b.url}/v2/_catalog").json()["repositories"]
            got = client.get(f"{b.url}/v2/team/app/manifests/v1", headers={"Accept": headers[
                "Content-Type"]})  # fmt: skip
            assert got.content == manifest
            # A delete on one replica is seen by the other.
            manifest_digest = tagged.headers["docker-content-digest"]
            gone = client.delete(f"{b.url}/v2/team/app/manifests/{manifest_digest}")
            assert gone.status_code == 202, gone.text
            assert client.get(f"{a.url}/v2/team/app/manifests/v1").status_code == 404
            listed = client.get(f"{a.url}/v2/team/app/tags/list")
            assert listed.status_code == 404 or not listed.json().get("tags"), listed.text


def test_eight_pulls_over_two_replicas_make_one_upstream_get(
    tmp_path: Path,
    bucket: dict[str, Any],
    redis_db: dict[str, Any],  # noqa: F811
) -> None:
    seed = secrets.token_hex(8)  # a layer (and Redis keys) of this run only
    image = build_image(tmp_path / "src", layers=[256 * MiB, 1000], seed=seed)
    with run_reference_registry(tmp_path / "hub") as hub, ExitStack() as stack:
        skopeo.copy(image.source_ref, hub.ref("library/big", "1"))
        settle_log(hub.log_path)
        mirrors = replicas(stack, tmp_path, bucket, redis=redis_db, proxy=proxy_settings(hub.url))
        layouts = [tmp_path / f"copy-{n}" for n in range(CLIENTS)]

        def pull(n: int) -> None:
            skopeo.copy(mirrors[n % 2].ref("library/big", "1"), f"oci:{layouts[n]}:1")

        with ThreadPoolExecutor(CLIENTS) as pool:
            list(pool.map(pull, range(CLIENTS)))
        settle_log(hub.log_path)
        for blob in image.blobs:
            assert count_blob_gets(hub.log_path, blob.digest) == 1, blob
    for layout in layouts:
        assert layout_digest(layout, "1") == image.digest
        blobs = layout_blobs(layout)
        assert all(name == actual for name, actual in blobs.items())


def test_processes_of_one_host_stream_each_others_download(
    tmp_path: Path,
    bucket: dict[str, Any],
    big: BigUpstream,  # noqa: F811
) -> None:
    # Two processes with one cache directory (one host): the one that does not download
    # streams the other's spool file while the download runs.
    before = big.gets()
    shared = {"cache": {"directory": str(tmp_path / "host-cache")}}
    with ExitStack() as stack:
        mirrors = replicas(stack, tmp_path, bucket, proxy=proxy_settings(big.registry.url),
                           extra=shared)  # fmt: skip
        assert_all_correct(big, blob_urls(mirrors, big.blob.digest))
        assert big.gets() - before == 1
        followed = sum(
            scrape_metrics(m.url).get("mirror_fills_followed_total", 0.0) for m in mirrors
        )
        assert followed >= 1
    assert not list((tmp_path / "host-cache" / "spool").iterdir())
