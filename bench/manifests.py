"""Workload 3: manifest request rates through the caches (wrk for GET, ab for HEAD)."""

from __future__ import annotations

import httpx

from bench.env import SIDES, Env, Side, alternate
from bench.loadgen import ab_head, wrk
from bench.results import Row, Samples, at_least
from tests.support.images import DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST

ACCEPT = ", ".join((OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST))


def cached_manifest(env: Env) -> tuple[str, str]:
    """A small image's repository and manifest digest, its tag already pulled through."""
    image, repository = env.seeded("small", [64 * 1024])

    def warm() -> None:
        for side in SIDES:
            url = f"{env.proxy(side).url}/v2/{repository}/manifests/latest"
            response = httpx.get(url, headers={"Accept": ACCEPT}, timeout=30.0, trust_env=False)
            if response.status_code != 200:
                raise RuntimeError(f"{side}: GET {url} -> {response.status_code}")

    env.once("small-warm", warm)
    return repository, image.digest


def manifest_rates(env: Env) -> list[Row]:
    repository, digest = cached_manifest(env)
    scale = env.scale
    by_tag, by_digest = Samples(), Samples()

    def measure(side: Side, _round: int) -> None:
        base = f"{env.proxy(side).url}/v2/{repository}/manifests"
        get = wrk(
            f"{base}/latest",
            connections=scale.connections,
            threads=2,
            seconds=scale.rate_seconds,
            headers={"Accept": ACCEPT},
        )
        by_tag.add(side, get.per_second)
        head = ab_head(
            f"{base}/{digest}",
            connections=scale.connections,
            seconds=scale.rate_seconds,
            headers=[("Accept", ACCEPT)],
        )
        by_digest.add(side, head.per_second)

    alternate(scale.rounds, measure)
    env.note(f"3 GET manifest by tag, requests/s: {by_tag.describe()}")
    env.note(f"3 HEAD manifest by digest, requests/s: {by_digest.describe()}")
    connections = scale.connections
    return [
        Row(
            3,
            f"GET manifest by tag, {connections} connections",
            "requests/s (wrk)",
            *by_tag.medians(),
            at_least(5.0),
        ),
        Row(
            3,
            f"HEAD manifest by digest, {connections} connections",
            "requests/s (ab)",
            *by_digest.medians(),
            at_least(5.0),
        ),
    ]
