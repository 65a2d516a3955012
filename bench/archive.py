"""Workload 13: `mirror export` and `mirror import` of a store, throughput and memory.

A filesystem store of about `ARCHIVE_SIZE` bytes (16 images of 4 layers, as a cache of
docker.io holds them) is written straight through the store's ingest API, not over HTTP.
Then, each timed as a process with its peak RSS sampled: `mirror export -o FILE` of the
whole store, and `mirror import FILE` into an empty one. The reference column is GNU
tar doing the same with the store's blob files (`tar -cf`, `tar -xf`): what the disk
allows. The bars are the issue's: >= 200 MiB/s, peak RSS <= 200 MiB.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import yaml

from bench.env import Env
from bench.results import Bar, Goal, Row, mirror_at_most
from bench.rss import PeakSampler
from mirror.digests import Digest
from mirror.store.drivers import create_driver
from mirror.store.store import Store

MiB = 1 << 20
ARCHIVE_SIZE = {"full": 1024 * MiB, "quick": 64 * MiB}
IMAGES, LAYERS = 16, 4
THROUGHPUT_BAR = 200.0  # MiB/s
RSS_BAR = 200.0  # MiB
NUMBER = 13


def archive_throughput(env: Env) -> list[Row]:
    total = ARCHIVE_SIZE.get(env.scale.name, ARCHIVE_SIZE["quick"])
    work = env.workdir / "archive"
    source, target, tarred = work / "source", work / "target", work / "tarred"
    for path in (source, target, tarred):
        path.mkdir(parents=True, exist_ok=True)
    asyncio.run(_fill(source, total // (IMAGES * LAYERS)))
    size = sum(p.stat().st_size for p in (source / "docker/registry/v2/blobs").rglob("data"))
    archive = work / "store.tar"
    _drop_caches_note(env)

    export_s, export_rss = _timed(
        [*_mirror, "export", "-q", "--config", str(_config(work, source)), "-o", str(archive)],
        env.scale.timeout,
    )
    import_s, import_rss = _timed(
        [*_mirror, "import", "-q", "--config", str(_config(work, target)), str(archive)],
        env.scale.timeout,
    )
    blobs = "docker/registry/v2/blobs"
    tar_file = work / "tar.tar"
    tar_out_s, tar_out_rss = _timed(
        ["tar", "-C", str(source), "-cf", str(tar_file), blobs], env.scale.timeout
    )
    tar_in_s, tar_in_rss = _timed(
        ["tar", "-C", str(tarred), "-xf", str(tar_file)], env.scale.timeout
    )
    mib = size / MiB
    title = f"archive of a {mib:,.0f} MiB store ({IMAGES * LAYERS} layers)"
    faster = Bar(Goal.MIRROR_AT_LEAST, THROUGHPUT_BAR, "MiB/s")
    rss = mirror_at_most(RSS_BAR, "MiB")
    return [
        Row(
            NUMBER,
            f"export {title}",
            "MiB/s (reference: tar -cf)",
            mib / export_s,
            mib / tar_out_s,
            faster,
        ),
        Row(
            NUMBER,
            f"import {title}",
            "MiB/s (reference: tar -xf)",
            mib / import_s,
            mib / tar_in_s,
            faster,
        ),
        Row(NUMBER, "export: peak RSS", "MiB (reference: tar)", export_rss, tar_out_rss, rss),
        Row(NUMBER, "import: peak RSS", "MiB (reference: tar)", import_rss, tar_in_rss, rss),
    ]


_mirror = (sys.executable, "-m", "mirror")


def _config(work: Path, root: Path) -> Path:
    path = work / f"{root.name}.yml"
    config = {
        "version": 0.1,
        "storage": {"filesystem": {"rootdirectory": str(root)}},
        "proxy": {"remoteurl": "http://127.0.0.1:9", "name": "docker.io", "offline": True},
    }
    path.write_text(yaml.safe_dump(config))
    return path


def _timed(cmd: list[str], timeout: float) -> tuple[float, float]:
    """Seconds and peak RSS (MiB) of running `cmd`; raises when it fails."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    sampler = PeakSampler(proc.pid)
    sampler.start()
    try:
        _, err = proc.communicate(timeout=timeout)
    finally:
        peak = sampler.stop()
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[3] if len(cmd) > 3 else cmd[0]} failed: {err.decode()[-500:]}")
    return elapsed, peak / MiB


async def _fill(root: Path, layer_size: int) -> None:
    """IMAGES images of LAYERS random layers each, cached from docker.io."""
    store = Store(create_driver("filesystem", {"rootdirectory": str(root)}))
    rng = random.Random(13)
    for image in range(IMAGES):
        repository = store.repository(f"docker.io/library/bench{image % 4}")
        layers = []
        for _ in range(LAYERS):
            layers.append(await _layer(store, rng, layer_size))
            await repository.blobs.link(layers[-1][0], origin="docker.io")
        config = json.dumps({"architecture": "amd64", "os": "linux", "n": image}).encode()
        config_info = await store.blobs.put(config)
        await repository.blobs.link(config_info.digest, origin="docker.io")
        raw = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": _descriptor(config_info.digest, len(config), "config.v1+json"),
                "layers": [_descriptor(d, s, "layer.v1.tar+gzip") for d, s in layers],
            }
        ).encode()
        manifest = await repository.manifests.put(raw, None, verify=False)
        await repository.tags.tag(str(image), manifest.digest, history=False)


async def _layer(store: Store, rng: random.Random, size: int) -> tuple[Digest, int]:
    """A random blob written through the store's verified ingest, 1 MiB at a time (one
    random block, numbered per chunk: made twice, to hash and to write, never held)."""
    block = bytearray(rng.randbytes(MiB))

    def chunks() -> Iterator[bytes]:
        for n in range((size + MiB - 1) // MiB):
            block[:8] = n.to_bytes(8, "big")
            yield bytes(block[: min(MiB, size - n * MiB)])

    hasher = hashlib.sha256()
    for chunk in chunks():
        hasher.update(chunk)
    digest = Digest("sha256", hasher.hexdigest())
    ingest = await store.blobs.ingest(digest)
    for chunk in chunks():
        await ingest.write(chunk)
    await ingest.commit(size)
    return digest, size


def _descriptor(digest: Digest, size: int, kind: str) -> dict[str, object]:
    return {"mediaType": f"application/vnd.oci.image.{kind}", "digest": str(digest), "size": size}


def _drop_caches_note(env: Env) -> None:
    env.note(
        f"workload {NUMBER}: the store was just written, so export reads it from the page "
        "cache; tar's numbers are taken the same way"
    )
