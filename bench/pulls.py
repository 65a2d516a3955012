"""Workloads 4-7: whole-image pulls and pushes with skopeo (containers/image, as podman)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from bench.env import SIDES, Env, Server, Side, alternate
from bench.results import Row, Samples, at_most, exactly, median
from bench.rss import sampling
from bench.settings import MiB, human_size
from bench.upstreamlog import upstream_window
from tests.support import skopeo


def timed_pull(env: Env, server: Server, repository: str) -> float:
    """Seconds `skopeo copy` takes to pull `repository:latest` from `server` into a dir."""
    with env.scratch() as target:
        started = time.perf_counter()
        skopeo.copy(server.ref(repository), f"dir:{target}/image", timeout=env.scale.timeout)
        return time.perf_counter() - started


def five_title(env: Env) -> str:
    return f"5-layer {human_size(env.scale.five_size)} image"


def cold_pull(env: Env) -> list[Row]:
    proxied, direct = Samples(), []
    layers = env.scale.five_layers
    for round_number in range(env.scale.rounds):
        # An image of its own per round, so every pull through a cache is cold.
        _, repository = env.seeded(f"five-{round_number}", layers)
        for side in SIDES:
            proxied.add(side, timed_pull(env, env.proxy(side), repository))
        direct.append(timed_pull(env, env.upstream, repository))
    shown = ", ".join(f"{value:.3f}" for value in direct)
    env.note(f"4 cold pull s: {proxied.describe()}; direct from the upstream [{shown}]")
    mirror, reference = proxied.medians()
    title = f"cold pull-through of a {five_title(env)}"
    return [
        Row(4, title, "time (s)", mirror, reference, at_most(0.8)),
        Row(
            4,
            title,
            "time (s), reference column: direct pull from the upstream",
            mirror,
            median(direct),
            at_most(1.0),
        ),
    ]


def crowd_pull(env: Env) -> list[Row]:
    clients, size = env.scale.clients, env.scale.blob_size
    wall, fetched = Samples(), Samples()
    peaks = env.peaks.setdefault(5, Samples())

    def measure(side: Side, round_number: int) -> None:
        # An image of its own per round and side: uncached in both caches, and what the
        # upstream logs for it is this side's alone (a registry:2 proxy may still be
        # fetching the other side's blobs after its clients are done).
        image, repository = env.seeded(f"crowd-{side}-{round_number}", [size])
        server = env.proxy(side)
        with (
            upstream_window(env.upstream.log_path, image) as window,
            sampling(server.config_path) as sampler,
        ):
            started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=clients) as pool:
                pulls = [pool.submit(timed_pull, env, server, repository) for _ in range(clients)]
                for pull in pulls:
                    pull.result()
            wall.add(side, time.perf_counter() - started)
        fetched.add(side, window.ratio)
        peaks.add(side, sampler.peak / MiB)
        env.note(f"5 {side} round {round_number + 1}: {window.describe()}")

    alternate(env.scale.rounds, measure)
    env.note(f"5 wall time s: {wall.describe()}")
    env.note(f"5 peak RSS MiB: {peaks.describe()}")
    title = f"{clients} clients pulling one uncached {human_size(size)}-layer image"
    return [
        Row(5, title, "bytes from upstream / image size", *fetched.medians(), exactly(1.0)),
        Row(5, title, "wall time (s)", *wall.medians(), at_most(0.75)),
    ]


def warm_pull(env: Env) -> list[Row]:
    _, repository = env.seeded("warm", env.scale.five_layers)

    def prime() -> None:
        for side in SIDES:
            timed_pull(env, env.proxy(side), repository)

    env.once("warm-primed", prime)
    samples = Samples()

    def measure(side: Side, _round: int) -> None:
        samples.add(side, timed_pull(env, env.proxy(side), repository))

    alternate(env.scale.rounds, measure)
    env.note(f"6 warm pull s: {samples.describe()}")
    title = f"warm pull of the {five_title(env)} (all cached)"
    return [Row(6, title, "time (s)", *samples.medians(), at_most(0.9))]


def push(env: Env) -> list[Row]:
    samples = Samples()

    def measure(side: Side, round_number: int) -> None:
        image = env.image(f"five-{round_number}", env.scale.five_layers)
        target = env.standalone(side).ref(f"push/five-{round_number}")
        started = time.perf_counter()
        skopeo.copy(image.source_ref, target, timeout=env.scale.timeout)
        samples.add(side, time.perf_counter() - started)

    alternate(env.scale.rounds, measure)
    env.note(f"7 push s: {samples.describe()}")
    title = f"push of the {five_title(env)} (standalone)"
    return [Row(7, title, "time (s)", *samples.medians(), at_most(0.9))]
