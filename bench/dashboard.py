"""Workload 18: the dashboard's repository list at 10,000 repositories (the quick run: its
`many`).

The mirror's standalone server is seeded through its HTTP API (workload 9 may already
have done it: only what is missing is added), then wrk measures the median latency on
one connection of three pages: the first, one in the middle, and a search. The bar is
the issue's: a page under 100 ms. The reference has no dashboard; its column is the
nearest thing it serves, a catalog page of 50 names (`/v2/_catalog?n=50`), for scale.
"""

from __future__ import annotations

import asyncio
import time

from bench.env import Env, Side, alternate
from bench.lists import _latency_ms
from bench.results import Row, Samples, mirror_at_most
from bench.seeding import SeedError, count_repositories, seed_repositories
from bench.settings import human_count

NUMBER = 18
PAGE = 50  # the dashboard's page size
BAR_MS = 100.0


def _seed(env: Env, target: int) -> int:
    url = env.standalone("mirror").url
    present = count_repositories(url)
    missing = max(target - present, 0)
    names = [f"ui/r{i:05d}" for i in range(missing)]
    started = time.perf_counter()
    asyncio.run(seed_repositories(url, names))
    env.note(
        f"18 mirror: created {missing:,} repositories in {time.perf_counter() - started:.1f} s"
    )
    counted = count_repositories(url)
    if counted < target:
        raise SeedError(f"mirror: the catalog lists {counted:,} repositories, not {target:,}")
    return counted


def dashboard_pages(env: Env) -> list[Row]:
    target = env.scale.many
    counted = _seed(env, target)
    middle = max(counted // PAGE // 2, 1)
    pages = {
        "first page": "/ui/",
        f"page {middle}": f"/ui/?page={middle}",
        "search": "/ui/?q=r001",  # 1 in 100 of the seeded names
    }
    seconds = env.scale.rate_seconds
    rows: list[Row] = []
    for label, path in pages.items():
        samples = Samples()

        def measure(side: Side, _round: int, path: str = path, samples: Samples = samples) -> None:
            server = env.standalone(side).url
            url = f"{server}{path}" if side == "mirror" else f"{server}/v2/_catalog?n={PAGE}"
            samples.add(side, _latency_ms(url, seconds))

        alternate(env.scale.rounds, measure)
        env.note(f"18 dashboard {label} at {counted:,} repositories, p50 ms: {samples.describe()}")
        rows.append(
            Row(
                NUMBER,
                f"dashboard repository list ({label}), {human_count(counted)} repositories",
                "p50 latency, 1 connection (ms; reference: its catalog page)",
                *samples.medians(),
                mirror_at_most(BAR_MS, "ms"),
            )
        )
    return rows
