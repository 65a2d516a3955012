"""Workload 12: pushing with a dead webhook endpoint costs what pushing with none does.

Two standalone mirrors on the same machine: one without notifications, one whose only
endpoint is a port where nothing listens (every delivery fails and is retried). The same
5-layer image is pushed with skopeo to each, alternately, `PUSHES` times (more than the
scale's rounds: one push is noisy); the row is the ratio of the medians. Every push
queues its events durably before it answers, so the difference is that cost: one small
local database commit per event, and nothing that waits on the endpoint. The row's
"reference" column is that push to the mirror with no endpoint (not docker-registry).
"""

from __future__ import annotations

import socket
import time

from bench.env import Env, Server
from bench.pulls import five_title
from bench.results import Row, at_most, median
from tests.support import skopeo
from tests.support.mirrorproc import run_mirror

PUSHES = 5
BAR = 1.15  # within noise of the same push with no endpoint


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _with_dead_endpoint(env: Env) -> Server:
    url = f"http://127.0.0.1:{_closed_port()}/events"
    notifications = {"endpoints": [{"name": "dead", "url": url}]}
    mirror = env.enter(
        run_mirror(env.workdir, name="standalone-dead-hook", server=env.server,
                   extra={"notifications": notifications})
    )  # fmt: skip
    return Server("mirror", mirror.url, mirror.config_path, mirror.log_path)


def dead_endpoint_push(env: Env) -> list[Row]:
    plain = env.standalone("mirror")
    dead = _with_dead_endpoint(env)
    times: dict[str, list[float]] = {"none": [], "dead": []}
    for n in range(max(PUSHES, env.scale.rounds)):
        image = env.image(f"hook-{n}", env.scale.five_layers)
        order = [("none", plain), ("dead", dead)]
        for kind, server in order if n % 2 == 0 else reversed(order):
            started = time.perf_counter()
            skopeo.copy(
                image.source_ref, server.ref(f"hooks/{kind}-{n}"), timeout=env.scale.timeout
            )
            times[kind].append(time.perf_counter() - started)
    env.note(
        "12 push s, no endpoint: "
        + ", ".join(f"{t:.3f}" for t in times["none"])
        + "; dead endpoint: "
        + ", ".join(f"{t:.3f}" for t in times["dead"])
    )
    # Both columns are mirror: the "reference" one is the same push with no endpoint.
    title = (
        f"push of the {five_title(env)}: mirror with a dead webhook endpoint "
        "(reference column: mirror with none)"
    )
    metric = "time (s)"
    return [Row(12, title, metric, median(times["dead"]), median(times["none"]), at_most(BAR))]
