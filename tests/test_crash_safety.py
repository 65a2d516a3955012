"""A `mirror serve` process killed with SIGKILL loses nothing committed, shows nothing partial.

Each test runs mirror as a real process on a storage root, commits some images with
skopeo, kills the process in the middle of something (a 200 MB streamed upload, the
commit of that upload, a burst of concurrent pushes), restarts it on the same root and
then checks it from the outside: the API walk of `tests.support.fsck` (catalog, tags,
manifests, blobs, all hashed), a hash of every published blob on disk, and skopeo pulls
compared byte for byte with what was built.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support import skopeo
from tests.support.fsck import (
    BLOBS_DIR,
    REPOSITORIES_DIR,
    assert_layout_has_image,
    check_registry,
    error_codes,
    linked_blobs,
    probe_blobs,
    scan_blob_store,
)
from tests.support.images import BuiltImage, build_image, build_index, sha256_file
from tests.support.mirrorproc import MirrorProcess, mirror_config
from tests.support.processes import free_port, running, wait_until
from tests.support.scrape import sample

pytestmark = pytest.mark.interop

KiB = 1024
MiB = 1024 * KiB
BIG_SIZE = 200 * MiB
BIG_CHUNK = 256 * KiB
KILL_AFTER = 48 * MiB
_RANGE = re.compile(r"^0-(\d+)$")


@contextmanager
def serve(
    workdir: Path, root: Path, name: str, **options: Any
) -> Iterator[tuple[MirrorProcess, subprocess.Popen[bytes]]]:
    """`mirror serve` on `root` (like mirrorproc.run_mirror), also yielding the process."""
    port = free_port()
    config_path = workdir / f"{name}-config.yml"
    config_path.write_text(yaml.safe_dump(mirror_config(root, port, **options)))
    log_path = workdir / f"{name}.log"
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "mirror", "serve", "--config", str(config_path)]
    with running(cmd, log_path=log_path, ready_url=f"{url}/v2/", start_timeout=20) as proc:
        yield MirrorProcess(url, root, log_path, config_path), proc


def kill9(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=10) == -signal.SIGKILL


def client_for(registry: MirrorProcess) -> httpx.Client:
    return httpx.Client(base_url=registry.url, timeout=30.0, trust_env=False)


def metric(registry: MirrorProcess, route: str, method: str, status: str) -> float:
    """One sample of mirror_http_requests_total (0 when absent)."""
    text = httpx.get(f"{registry.url}/metrics", trust_env=False, timeout=5.0).text
    found = sample(text, "mirror_http_requests_total", route=route, method=method, status=status)
    return found or 0.0


def assert_consistent(
    registry: MirrorProcess, committed: dict[str, BuiltImage], pulls: Path | None = None
) -> None:
    """The fsck walk, the on-disk blob scan, and (with `pulls`) a skopeo pull of each
    committed `repository:tag` compared with what was built."""
    report = check_registry(registry.url)
    report.assert_clean()
    scan = scan_blob_store(registry.root)
    assert scan.problems == []
    for name, digests in linked_blobs(registry.root).items():
        served, problems = probe_blobs(registry.url, name, digests)
        assert problems == []
        # A link is written only after its blob is in place.
        assert served == set(digests), name
    for ref, image in committed.items():
        name, tag = ref.split(":")
        assert report.tags.get(name, {}).get(tag) == image.digest, ref
        if pulls is not None:
            pulls.mkdir(exist_ok=True)
            out = pulls / f"{name.replace('/', '_')}-{tag}-{secrets.token_hex(4)}"
            skopeo.copy(registry.ref(name, tag), f"oci:{out}:{tag}", all_images=True)
            assert_layout_has_image(out, tag, image)


@dataclass
class Stream:
    """BIG_SIZE deterministic bytes in BIG_CHUNK pieces, distinct per chunk."""

    sent: int = 0
    reached: threading.Event = field(default_factory=threading.Event)
    _base: bytes = field(default_factory=lambda: random.Random("crash").randbytes(BIG_CHUNK))

    def chunk(self, index: int) -> bytes:
        return index.to_bytes(8, "big") + self._base[8:]

    def prefix(self, size: int) -> Iterator[bytes]:
        for index in range(-(-size // BIG_CHUNK)):
            yield self.chunk(index)[: size - index * BIG_CHUNK]

    def digest(self, size: int, tail: bytes = b"") -> str:
        hasher = hashlib.sha256()
        for piece in self.prefix(size):
            hasher.update(piece)
        hasher.update(tail)
        return f"sha256:{hasher.hexdigest()}"

    def body(self) -> Iterator[bytes]:
        """The whole stream; sets `reached` once KILL_AFTER bytes were handed out."""
        for piece in self.prefix(BIG_SIZE):
            yield piece
            self.sent += len(piece)
            if self.sent >= KILL_AFTER:
                self.reached.set()


def in_thread(target: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    """Run `target()` in a thread; the list gets its result or the exception it raised."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(target())
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def push_committed(tmp_path: Path, registry: MirrorProcess) -> dict[str, BuiltImage]:
    images = {
        "crash/app:v1": build_image(tmp_path / "src", layers=[MiB, 3 * KiB], seed=1, tag="a"),
        "crash/app:v2": build_image(tmp_path / "src", layers=[500 * KiB], seed=2, tag="b"),
        "crash/multi:v1": build_index(tmp_path / "src", layers=[200 * KiB], seed=3, tag="c"),
    }
    for ref, image in images.items():
        name, tag = ref.split(":")
        skopeo.copy(image.source_ref, registry.ref(name, tag), all_images=True)
    return images


def pusher(image: BuiltImage, registry: MirrorProcess, ref: str) -> Callable[[], object]:
    name, tag = ref.split(":")
    return lambda: skopeo.copy(image.source_ref, registry.ref(name, tag), timeout=60)


def blob_data(root: Path, digest: str) -> Path:
    """Where a published blob's bytes are (the reference layout)."""
    hex_digest = digest.split(":", 1)[1]
    return root / BLOBS_DIR / "sha256" / hex_digest[:2] / hex_digest / "data"


def upload_data_path(root: Path, name: str, location: str) -> Path:
    """Where an upload session keeps its bytes (the reference layout)."""
    upload_id = location.rstrip("/").rsplit("/", 1)[1]
    return root / REPOSITORIES_DIR / name / "_uploads" / upload_id / "data"


def wait_for_open_file(pid: int, path: Path, timeout: float) -> bool:
    """True as soon as process `pid` has `path` open (Linux /proc); False after `timeout`."""
    target = str(path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    return True
            except FileNotFoundError:
                continue
        time.sleep(0.001)
    return False


def upload_range(client: httpx.Client, location: str) -> int | None:
    """Bytes an upload session holds (from GET's Range), or None when it is unknown."""
    response = client.get(location)
    if response.status_code == 404:
        assert error_codes(response) == ["BLOB_UPLOAD_UNKNOWN"]
        return None
    assert response.status_code == 204, response.text
    found = _RANGE.match(response.headers["Range"])
    assert found is not None, response.headers["Range"]
    return int(found.group(1)) + 1


def test_kill_mid_upload_and_mid_commit_loses_nothing(tmp_path: Path) -> None:
    root = tmp_path / "root"
    stream = Stream()
    with serve(tmp_path, root, "first") as (registry, proc):
        committed = push_committed(tmp_path, registry)
        with client_for(registry) as client:
            started = client.post("/v2/crash/big/blobs/uploads/")
            assert started.status_code == 202
            location = started.headers["Location"]
            thread, outcome = in_thread(lambda: client.patch(location, content=stream.body()))
            assert stream.reached.wait(30), "the upload never got going"
            kill9(proc)
            thread.join(30)
        assert outcome and isinstance(outcome[0], httpx.TransportError), outcome
        assert stream.sent < BIG_SIZE

    tail = b"the end" * 100
    with serve(tmp_path, root, "second") as (registry, proc), client_for(registry) as client:
        assert_consistent(registry, committed, tmp_path / "pulls")
        held = upload_range(client, location)
        # The session survived: resuming where its Range ends must give the right blob.
        assert held is not None and 0 < held <= stream.sent
        resumed = client.patch(
            location,
            content=tail,
            headers={"Content-Range": f"{held}-{held + len(tail) - 1}"},
        )
        assert resumed.status_code == 202, resumed.text
        assert resumed.headers["Range"] == f"0-{held + len(tail) - 1}"
        big = stream.digest(held, tail)
        # This process never saw the session's first chunks, so finishing it reads the data
        # (sealed against appends first) to hash it before publishing it: the kill lands
        # in the middle of that commit.
        sealed = upload_data_path(root, "crash/big", location).with_name("sealed")
        thread, outcome = in_thread(lambda: client.put(location, params={"digest": big}))
        assert wait_for_open_file(proc.pid, sealed, 10), "the commit never read the upload"
        kill9(proc)
        thread.join(30)
        assert outcome and isinstance(outcome[0], httpx.TransportError), outcome

    size = held + len(tail)
    with serve(tmp_path, root, "third") as (registry, _), client_for(registry) as client:
        assert_consistent(registry, committed)
        assert probe_blobs(registry.url, "crash/big", [big]) == (set(), [])
        assert upload_range(client, location) == size
        finished = client.put(location, params={"digest": big})
        assert finished.status_code == 201, finished.text
        head = client.head(f"/v2/crash/big/blobs/{big}")
        assert head.status_code == 200 and int(head.headers["Content-Length"]) == size
        assert_consistent(registry, committed, tmp_path / "pulls")
        assert probe_blobs(registry.url, "crash/big", [big]) == ({big}, [])
        assert upload_range(client, location) is None
        assert 'status="500"' not in client.get("/metrics").text


def test_kill_during_concurrent_pushes(tmp_path: Path) -> None:
    root = tmp_path / "root"
    burst = {
        f"burst/img{i}:v1": build_image(
            tmp_path / "src", layers=[2 * MiB, 512 * KiB, KiB], seed=f"burst{i}", tag=f"b{i}"
        )
        for i in range(6)
    }
    burst_blobs = sum(len(image.blobs) for image in burst.values())
    with serve(tmp_path, root, "first") as (registry, proc):
        committed = push_committed(tmp_path, registry)
        before = metric(registry, "upload", "PUT", "201")
        pushes = {ref: in_thread(pusher(image, registry, ref)) for ref, image in burst.items()}
        wait_until(
            lambda: metric(registry, "upload", "PUT", "201") >= before + burst_blobs // 3,
            30,
            what="a third of the burst's blobs to be committed",
        )
        kill9(proc)
        for thread, _ in pushes.values():
            thread.join(60)
    assert all(outcome for _, outcome in pushes.values())
    succeeded = {
        ref for ref, (_, outcome) in pushes.items() if not isinstance(outcome[0], Exception)
    }
    assert len(succeeded) < len(burst), "the kill came after the burst"
    committed.update({ref: burst[ref] for ref in succeeded})

    with serve(tmp_path, root, "second") as (registry, _):
        assert_consistent(registry, committed, tmp_path / "pulls")
        report = check_registry(registry.url)
        for ref in set(burst) - succeeded:
            name, tag = ref.split(":")
            # An interrupted push is absent, or complete (it got as far as the tag).
            found = report.tags.get(name, {}).get(tag)
            assert found in (None, burst[ref].digest), ref
        # Leftovers of the interrupted pushes must not get in the way of a new push.
        for ref in set(burst) - succeeded:
            skopeo.copy(burst[ref].source_ref, registry.ref(*ref.split(":")))
        assert_consistent(registry, committed | burst, tmp_path / "pulls")
        assert check_registry(registry.url).dangling_tags == {}


def test_leftovers_of_a_killed_manifest_write_stay_invisible(tmp_path: Path) -> None:
    """What SIGKILL leaves inside a manifest PUT (a temp blob file, a revision directory
    with only a temp link) is never served; temp files of dead writers (no lock held:
    `fswriter.open_temp`) go at start-up, however recent."""
    root = tmp_path / "root"
    base = build_image(tmp_path / "src", layers=[10 * KiB], seed="base", tag="base")
    image = build_image(tmp_path / "src", layers=[10 * KiB], seed="leftover")
    with serve(tmp_path, root, "first") as (registry, _), client_for(registry) as client:
        skopeo.copy(base.source_ref, registry.ref("left/base", "v1"))
        # A push uploads the blobs first; the manifest PUT is what gets killed.
        for blob in image.blobs:
            pushed = client.post(
                "/v2/left/over/blobs/uploads/",
                params={"digest": blob.digest},
                content=blob.path.read_bytes(),
            )
            assert pushed.status_code == 201
    manifest_hex = image.digest.split(":", 1)[1]
    blob_dir = blob_data(root, image.digest).parent
    blob_dir.mkdir(parents=True)
    half = image.manifest[: len(image.manifest) // 2]
    leftovers = [blob_dir / f".data.tmp-{secrets.token_hex(16)}"]
    leftovers[0].write_bytes(half)
    revision = root / REPOSITORIES_DIR / "left/over/_manifests/revisions/sha256" / manifest_hex
    revision.mkdir(parents=True)
    leftovers.append(revision / f".link.tmp-{secrets.token_hex(16)}")
    leftovers[1].write_text(image.digest)
    leftovers.append(blob_dir / f".data.tmp-{secrets.token_hex(16)}")
    leftovers[2].write_bytes(half)
    a_minute_ago, two_hours_ago = time.time() - 60, time.time() - 7200
    for path, when in zip(leftovers, (a_minute_ago, a_minute_ago, two_hours_ago), strict=True):
        os.utime(path, (when, when))

    with serve(tmp_path, root, "second") as (registry, _), client_for(registry) as client:
        wait_until(
            lambda: not any(path.exists() for path in leftovers),
            10,
            what="the temp files of the killed process to be removed",
        )
        scan = scan_blob_store(root)
        assert scan.temp_files == []
        assert scan.unpublished == [image.digest]
        assert scan.problems == []
        response = client.get(f"/v2/left/over/manifests/{image.digest}")
        assert response.status_code == 404
        assert error_codes(response) == ["MANIFEST_UNKNOWN"]
        assert client.head(f"/v2/left/over/blobs/{image.digest}").status_code == 404
        assert client.get("/v2/left/over/tags/list").status_code == 404
        report = check_registry(registry.url)
        report.assert_clean()
        assert ("left/over", image.digest) not in report.manifests
        skopeo.copy(image.source_ref, registry.ref("left/over", "v1"))
        committed = {"left/over:v1": image, "left/base:v1": base}
        assert_consistent(registry, committed, tmp_path / "pulls")


def test_the_consistency_check_sees_damage(tmp_path: Path) -> None:
    """The consistency checks the tests above rely on catch flipped, truncated and missing
    blobs (mirror serves what is on disk; the checks must not)."""
    root = tmp_path / "root"
    index = build_index(tmp_path / "src", layers=[100 * KiB, 10 * KiB], seed="damage")
    amd64, arm64 = index.children
    flipped, truncated = amd64.layers
    missing = arm64.config
    assert missing is not None
    with serve(tmp_path, root, "only") as (registry, _):
        skopeo.copy(index.source_ref, registry.ref("damaged/app", "v1"), all_images=True)
        check_registry(registry.url).assert_clean()

        content = bytearray(blob_data(root, flipped.digest).read_bytes())
        content[len(content) // 2] ^= 0xFF
        blob_data(root, flipped.digest).write_bytes(content)
        with blob_data(root, truncated.digest).open("r+b") as f:
            f.truncate(truncated.size // 2)
        blob_data(root, missing.digest).unlink()

        damaged = {flipped.digest, truncated.digest, missing.digest}
        report = check_registry(registry.url)
        assert len(report.problems) == 3, report.problems
        for digest in damaged:
            assert any(digest in problem for problem in report.problems), digest
        with pytest.raises(AssertionError, match="registry is inconsistent"):
            report.assert_clean()
        scan = scan_blob_store(root)
        assert scan.unpublished == [missing.digest]
        assert sorted(scan.problems) == sorted(
            f"{blob_data(root, d)}: published blob hashes to {sha256_file(blob_data(root, d))}"
            for d in (flipped.digest, truncated.digest)
        )
        served, problems = probe_blobs(registry.url, "damaged/app", [b.digest for b in index.blobs])
        assert served == {b.digest for b in index.blobs} - damaged
        assert len(problems) == 2


def test_tag_killed_between_its_two_link_writes_is_whole(tmp_path: Path) -> None:
    """A tag's `current` link is written before its history (`index`) link, so a kill in
    between leaves a tag that is listed AND answers; never a listed tag that is a 404."""
    root = tmp_path / "root"
    image = build_image(tmp_path / "src", layers=[10 * KiB], seed="tagged")
    with serve(tmp_path, root, "first") as (registry, _):
        skopeo.copy(image.source_ref, registry.ref("half/tagged", "v1"))
    # What `PUT /manifests/v2` leaves when killed right after its first link write.
    tags = root / REPOSITORIES_DIR / "half/tagged/_manifests/tags"
    current_link = tags / "v2/current/link"
    current_link.parent.mkdir(parents=True)
    current_link.write_text(image.digest)

    with serve(tmp_path, root, "second") as (registry, _), client_for(registry) as client:
        r = client.get("/v2/half/tagged/manifests/v2", headers={"Accept": image.media_type})
        assert r.status_code == 200
        assert r.headers["docker-content-digest"] == image.digest
        report = check_registry(registry.url)
        report.assert_clean()
        assert report.dangling_tags == {}
        assert report.tags == {"half/tagged": {"v1": image.digest, "v2": image.digest}}
