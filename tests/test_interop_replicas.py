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
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import skopeo
from tests.support.badupstream import serving_faulty_registry
from tests.support.distribution import count_blob_gets, run_reference_registry, settle_log
from tests.support.emulators import S3Emulator, unique_root
from tests.support.images import build_image, layout_digest
from tests.support.mirrorproc import MirrorProcess, run_mirror
from tests.support.oci import random_bytes
from tests.support.processes import free_port, wait_until
from tests.support.pullhelpers import MiB, layout_blobs, proxy_settings, scrape_metrics
from tests.support.served import Served, serve_mirror
from tests.test_conformance import PLAIN_HTTP
from tests.test_interop_singleflight import (
    BigUpstream,
    assert_all_correct,
    big,  # noqa: F401 (fixture)
    blob_urls,
    redis_db,  # noqa: F401 (fixture)
)
from tests.test_reliability_upstream import push

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


SECRET = secrets.token_hex(16)


@pytest.mark.parametrize(
    ("b_secret", "server"), [(SECRET, "granian"), ("another-secret-of-replica-b", "uvicorn")]
)
def test_a_follower_on_another_host_streams_from_the_holder_before_the_commit(
    tmp_path: Path,
    bucket: dict[str, Any],
    redis_db: dict[str, Any],  # noqa: F811
    b_secret: str,
    server: str,
) -> None:
    # Separate cache directories (two hosts): replica B cannot open A's spool file, and
    # reads it from A's /_mirror/partial while A's slow download runs - unless its
    # secret is another, when it waits for the commit as before (still one upstream GET).
    data = random_bytes(SIZE, 21)
    with serving_faulty_registry() as (upstream, faults), ExitStack() as stack:
        digest = push(upstream, data)
        ports = [free_port(), free_port()]
        a, b = (
            stack.enter_context(
                run_mirror(
                    tmp_path,
                    name=name,
                    port=port,
                    storage=bucket,
                    env=PLAIN_HTTP,
                    redis=redis_db,
                    proxy=proxy_settings(upstream),
                    server=server,
                    extra={"cluster": {"advertise": f"http://127.0.0.1:{port}", "secret": key}},
                )
            )
            for name, port, key in zip(
                ("replica-a", "replica-b"), ports, (SECRET, b_secret), strict=True
            )
        )
        faults.mode, faults.rate = "slow", RATE
        with ThreadPoolExecutor(2) as pool:
            holder = pool.submit(timed_pull, a.url, digest)
            wait_until(lambda: spooling(a), 10, what="replica A to spool the download")
            follower = pool.submit(timed_pull, b.url, digest)
            a_pull, b_pull = holder.result(60), follower.result(60)
        for got in (a_pull, b_pull):
            assert (got.status, got.body) == (200, data)
        assert faults.blob_gets == 1
        streamed = b_secret == SECRET
        # A's download ends (and commits) only after its client has the last byte.
        assert (b_pull.first_byte < a_pull.done - 1.0) is streamed, (b_pull, a_pull)
        warned = "answered 403; waiting for its commit instead" in b.log_path.read_text()
        assert warned is not streamed


SIZE = 12 * MiB
RATE = 3 * MiB  # the download takes about 4 s


@dataclass(frozen=True)
class TimedPull:
    status: int
    body: bytes
    first_byte: float
    done: float

    def __repr__(self) -> str:
        return f"TimedPull({self.status}, first byte {self.first_byte:.2f}, done {self.done:.2f})"


def timed_pull(url: str, digest: str, started: threading.Event | None = None) -> TimedPull:
    parts: list[bytes] = []
    first = 0.0
    with (
        httpx.Client(base_url=url, trust_env=False, timeout=60.0) as client,
        client.stream("GET", f"/v2/app/blobs/{digest}", follow_redirects=True) as response,
    ):
        for chunk in response.iter_bytes():
            if not parts:
                first = time.monotonic()
                if started is not None:
                    started.set()
            parts.append(chunk)
    return TimedPull(response.status_code, b"".join(parts), first, time.monotonic())


def spooling(mirror: MirrorProcess | Served) -> bool:
    return scrape_metrics(mirror.url).get("mirror_fills_active", 0.0) >= 1


def test_a_follower_on_another_host_carries_on_when_the_holder_is_killed(
    tmp_path: Path,
    bucket: dict[str, Any],
    redis_db: dict[str, Any],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Replica B streams A's download from A's /_mirror/partial; A is SIGKILLed half way.
    # B takes the download over (its lease names a dead process; whether a read of A
    # failed first, and was logged, depends on which B noticed first) and its client gets
    # the whole blob: the bytes it had from A, then B's own.
    for key, value in PLAIN_HTTP.items():
        monkeypatch.setenv(key, value)
    data = random_bytes(SIZE, 22)
    with serving_faulty_registry() as (upstream, faults), ExitStack() as stack:
        digest = push(upstream, data)
        ports = [free_port(), free_port()]
        options: dict[str, Any] = {
            "storage": bucket,
            "redis": redis_db,
            "proxy": proxy_settings(upstream),
        }
        clusters = [
            {"cluster": {"advertise": f"http://127.0.0.1:{port}", "secret": SECRET}}
            for port in ports
        ]
        a = stack.enter_context(
            serve_mirror(tmp_path, ports[0], name="replica-a", extra=clusters[0], **options)
        )
        b = stack.enter_context(
            run_mirror(tmp_path, name="replica-b", port=ports[1], extra=clusters[1], **options)
        )
        faults.mode, faults.rate = "slow", RATE
        b_started = threading.Event()
        with ThreadPoolExecutor(2) as pool:
            holder = pool.submit(timed_pull, a.url, digest)
            wait_until(lambda: spooling(a), 10, what="replica A to spool the download")
            follower = pool.submit(timed_pull, b.url, digest, b_started)
            assert b_started.wait(10), "B's client got no byte from A's download"
            a.proc.send_signal(signal.SIGKILL)
            a.proc.wait(10)
            with pytest.raises(httpx.TransportError):
                holder.result(60)
            got = follower.result(60)
        assert (got.status, got.body) == (200, data)
        assert faults.blob_gets == 2  # A's, cut by its death, and B's
