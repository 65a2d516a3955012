"""Workloads 1, 2 and 8: blob GETs through the pull-through caches, measured with curl."""

from __future__ import annotations

from bench.cpu import tree_cpu_seconds
from bench.env import SIDES, Env, Server, Side, alternate
from bench.loadgen import download, parallel_download
from bench.results import Row, Samples, at_least, at_most
from bench.rss import sampling
from bench.settings import GiB, MiB, human_size
from tests.support.images import BlobFile


def blob_url(server: Server, repository: str, digest: str) -> str:
    return f"{server.url}/v2/{repository}/blobs/{digest}"


def cached_blob(env: Env) -> tuple[str, BlobFile]:
    """The big blob, in the upstream and already pulled through both caches."""
    image, repository = env.seeded("blob", [env.scale.blob_size])
    layer = image.layers[0]

    def warm() -> None:
        for side in SIDES:
            # The second GET is served from the cache, which leaves it in the page cache.
            for _ in range(2):
                url = blob_url(env.proxy(side), repository, layer.digest)
                download(url, layer.size, timeout=env.scale.timeout)

    env.once("blob-warm", warm)
    return repository, layer


def single_stream(env: Env) -> list[Row]:
    repository, blob = cached_blob(env)
    samples, cpu = Samples(), Samples()

    def measure(side: Side, _round: int) -> None:
        server = env.proxy(side)
        url = blob_url(server, repository, blob.digest)
        before = tree_cpu_seconds(server.config_path)
        transfer = download(url, blob.size, timeout=env.scale.timeout)
        cpu.add(side, (tree_cpu_seconds(server.config_path) - before) * GiB / blob.size)
        samples.add(side, blob.size / transfer.total / MiB)

    alternate(env.scale.rounds, measure)
    env.note(f"1 single-stream MiB/s: {samples.describe()}")
    env.note(f"1 single-stream server CPU s per GiB: {cpu.describe()}")
    title = f"GET cached {human_size(env.scale.blob_size)} blob, 1 stream"
    return [
        Row(1, title, "throughput (MiB/s)", *samples.medians(), at_least(1.0)),
        Row(1, title, "server CPU s per GiB sent", *cpu.medians(), at_most(1.0)),
    ]


def parallel_streams(env: Env) -> list[Row]:
    repository, blob = cached_blob(env)
    streams = env.scale.streams
    samples, cpu = Samples(), Samples()
    peaks = env.peaks.setdefault(2, Samples())
    processes: dict[Side, int] = dict.fromkeys(SIDES, 0)

    def measure(side: Side, _round: int) -> None:
        server = env.proxy(side)
        url = blob_url(server, repository, blob.digest)
        before = tree_cpu_seconds(server.config_path)
        with sampling(server.config_path) as sampler:
            wall = parallel_download(url, blob.size, streams, timeout=env.scale.timeout)
        spent = tree_cpu_seconds(server.config_path) - before
        cpu.add(side, spent * GiB / (streams * blob.size))
        samples.add(side, streams * blob.size / wall / MiB)
        peaks.add(side, sampler.peak / MiB)
        processes[side] = max(processes[side], sampler.processes)

    alternate(env.scale.rounds, measure)
    env.note(f"2 aggregate MiB/s over {streams} streams: {samples.describe()}")
    env.note(f"2 server CPU s per GiB sent: {cpu.describe()}")
    env.note(f"2 peak RSS MiB: {peaks.describe()}")
    tree = ", ".join(f"{side} {count}" for side, count in processes.items())
    env.note(f"2 processes in each server's tree: {tree}")
    title = f"same, {streams} parallel streams"
    return [
        Row(2, title, "aggregate throughput (MiB/s)", *samples.medians(), at_least(1.0)),
        Row(2, title, "server CPU s per GiB sent", *cpu.medians(), at_most(1.0)),
    ]


def first_byte(env: Env) -> list[Row]:
    samples = Samples()
    size = env.scale.blob_size

    def measure(side: Side, round_number: int) -> None:
        # A blob of its own per round: both caches see it for the first time.
        image, repository = env.seeded(f"first-{round_number}", [size])
        layer = image.layers[0]
        url = blob_url(env.proxy(side), repository, layer.digest)
        transfer = download(url, layer.size, timeout=env.scale.timeout)
        samples.add(side, transfer.first_byte * 1000)

    alternate(env.scale.rounds, measure)
    env.note(f"8 time to first byte, ms: {samples.describe()}")
    title = f"first byte of an uncached {human_size(size)} blob"
    return [Row(8, title, "time to first byte (ms)", *samples.medians(), at_most(0.9))]
