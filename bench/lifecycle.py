"""Workload 16: what recording access times costs the hit path (issue 12).

Two `mirror serve` pull-through caches in front of the same upstream, side by side:
the "mirror" column has eviction on (`proxy.ttl: 168h`, registry:2's default, and a
`cache.maxsize` far above what the run stores, so nothing is evicted but every hit is
recorded), the "reference" column has it off (`proxy.ttl: 0`, no cap: no access log at
all). Measured with wrk on warm content: GETs of a cached 64 KiB blob and GETs of a
manifest by tag. The bar: eviction on within 5% of off, by the request rate and by the
server's CPU per request (`bench.cpu`; steadier on a shared machine).
"""

from __future__ import annotations

import functools
from typing import Any

import httpx

from bench.cpu import per_request
from bench.env import SIDES, Env, Server, Side, alternate
from bench.loadgen import wrk
from bench.manifests import ACCEPT
from bench.results import Row, Samples, at_least, at_most
from tests.support.mirrorproc import run_mirror

SMALL_BLOB = 64 * 1024
CAP = "1TiB"


def _proxy(env: Env, side: Side) -> Server:
    key = f"evict-{'on' if side == 'mirror' else 'off'}"
    proxy: dict[str, Any] = {"remoteurl": env.upstream.url}
    extra: dict[str, Any] = {}
    if side == "mirror":
        proxy["ttl"] = "168h"
        extra["cache"] = {"maxsize": CAP}
    else:
        proxy["ttl"] = 0
    process = env.enter(
        run_mirror(env.workdir, name=key, server=env.server, workers=1, proxy=proxy, extra=extra)
    )
    return Server(side, process.url, process.config_path, process.log_path)


def access_recording(env: Env) -> list[Row]:
    image, repository = env.seeded("evict-small", [SMALL_BLOB])
    layer = image.layers[0]
    servers = {side: _proxy(env, side) for side in SIDES}
    for server in servers.values():
        for path in ("manifests/latest", f"blobs/{layer.digest}"):
            url = f"{server.url}/v2/{repository}/{path}"
            for _ in range(2):  # the second one is a hit
                response = httpx.get(url, headers={"Accept": ACCEPT}, timeout=60.0, trust_env=False)
                if response.status_code != 200:
                    raise RuntimeError(f"GET {url} -> {response.status_code}")
    blobs, manifests = Samples(), Samples()
    blob_cpu, manifest_cpu = Samples(), Samples()
    scale = env.scale

    targets: tuple[tuple[str, dict[str, str], Samples, Samples], ...] = (
        (f"blobs/{layer.digest}", {}, blobs, blob_cpu),
        ("manifests/latest", {"Accept": ACCEPT}, manifests, manifest_cpu),
    )

    def measure(side: Side, _round: int) -> None:
        server = servers[side]
        for path, headers, rates, cpus in targets:
            url = f"{server.url}/v2/{repository}/{path}"
            load = functools.partial(
                wrk, url, connections=scale.connections, threads=2,
                seconds=scale.rate_seconds, headers=headers,
            )  # fmt: skip
            rate, cpu = per_request(server.config_path, load)
            rates.add(side, rate.per_second)
            cpus.add(side, cpu)

    alternate(scale.rounds, measure)
    env.note(f"16 warm 64 KiB blob GETs/s, eviction on | off: {blobs.describe()}")
    env.note(f"16 manifest GETs/s by tag, eviction on | off: {manifests.describe()}")
    env.note(f"16 server CPU us per blob GET, eviction on | off: {blob_cpu.describe()}")
    env.note(f"16 server CPU us per manifest GET, eviction on | off: {manifest_cpu.describe()}")
    c = scale.connections
    return [
        Row(
            16,
            f"warm 64 KiB blob GET, {c} conns: eviction on (ref. column: off)",
            "requests/s (wrk)",
            *blobs.medians(),
            at_least(0.95),
        ),
        Row(
            16,
            f"manifest GET by tag, {c} conns: eviction on (ref. column: off)",
            "requests/s (wrk)",
            *manifests.medians(),
            at_least(0.95),
        ),
        Row(
            16,
            "warm 64 KiB blob GET: eviction on (ref. column: off)",
            "server CPU us per request",
            *blob_cpu.medians(),
            at_most(1.05),
        ),
        Row(
            16,
            "manifest GET by tag: eviction on (ref. column: off)",
            "server CPU us per request",
            *manifest_cpu.medians(),
            at_most(1.05),
        ),
    ]
