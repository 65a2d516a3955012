"""Workload 9: a tag-list page and a catalog page, with few and with many entries behind them.

Runs on the standalone servers (the reference's proxy mode refuses pushes). Both are
seeded through the HTTP API, first to `few` repositories, measured, then to `many`,
measured again; then a repository with `few` tags and one with `many`. Latency is wrk's
median over one connection; the rate is wrk over `connections` connections.
"""

from __future__ import annotations

import asyncio
import time

from bench.env import SIDES, Env, Side, alternate
from bench.loadgen import wrk
from bench.results import Row, Samples, at_least, mirror_at_most
from bench.seeding import SeedError, count_repositories, seed_repositories, seed_tags
from bench.settings import human_count

PAGE = 100
GROWTH_BAR = 2.0


def _latency_ms(url: str, seconds: int) -> float:
    result = wrk(url, connections=1, threads=1, seconds=seconds)
    if result.median_latency is None:
        raise RuntimeError(f"wrk reported no latency for {url}")
    return result.median_latency * 1000


def _measure(env: Env, path: str, *, rate: bool) -> tuple[Samples, Samples]:
    """Median latency (ms) on one connection and, when `rate`, requests/s on many."""
    latency, per_second = Samples(), Samples()
    scale = env.scale

    def measure(side: Side, _round: int) -> None:
        url = f"{env.standalone(side).url}{path}"
        latency.add(side, _latency_ms(url, scale.rate_seconds))
        if rate:
            result = wrk(url, connections=scale.connections, threads=2, seconds=scale.rate_seconds)
            per_second.add(side, result.per_second)

    alternate(scale.rounds, measure)
    return latency, per_second


def _grow_catalog(env: Env, made: dict[Side, int], target: int) -> None:
    """Add `cat/rNNNNN` repositories until each standalone server lists `target`."""
    for side in SIDES:
        url = env.standalone(side).url
        missing = max(target - count_repositories(url), 0)
        names = [f"cat/r{i:05d}" for i in range(made[side], made[side] + missing)]
        started = time.perf_counter()
        asyncio.run(seed_repositories(url, names))
        elapsed = time.perf_counter() - started
        made[side] += missing
        env.note(f"9 {side}: created {missing:,} repositories in {elapsed:.1f} s")
        counted = count_repositories(url)
        if counted != target:
            raise SeedError(f"{side}: the catalog lists {counted:,} repositories, not {target:,}")


def _seed_tags(env: Env, repository: str, count: int) -> None:
    for side in SIDES:
        tags = [f"t{i:05d}" for i in range(count)]
        started = time.perf_counter()
        asyncio.run(seed_tags(env.standalone(side).url, repository, tags))
        elapsed = time.perf_counter() - started
        env.note(f"9 {side}: pushed {count:,} tags to {repository} in {elapsed:.1f} s")


def _rows(env: Env, what: str, unit: str, samples: dict[int, tuple[Samples, Samples]]) -> list[Row]:
    few, many = env.scale.few, env.scale.many
    (few_latency, _), (many_latency, many_rate) = samples[few], samples[many]
    mirror_few, reference_few = few_latency.medians()
    mirror_many, reference_many = many_latency.medians()
    for count, (latency, rate) in samples.items():
        env.note(f"9 {what} at {count:,} {unit}, p50 latency ms: {latency.describe()}")
        if rate.mirror:
            env.note(f"9 {what} at {count:,} {unit}, requests/s: {rate.describe()}")
    title = f"{what} (n={PAGE}), {human_count(few)} vs {human_count(many)} {unit}"
    return [
        Row(
            9,
            title,
            f"p50 latency growth, {human_count(few)} -> {human_count(many)} (x)",
            mirror_many / mirror_few,
            reference_many / reference_few,
            mirror_at_most(GROWTH_BAR),
        ),
        Row(
            9,
            title,
            f"requests/s at {human_count(many)} {unit}",
            *many_rate.medians(),
            at_least(1.0),
        ),
    ]


def list_pages(env: Env) -> list[Row]:
    few, many = env.scale.few, env.scale.many
    made: dict[Side, int] = dict.fromkeys(SIDES, 0)
    catalog: dict[int, tuple[Samples, Samples]] = {}
    for count in (few, many):
        _grow_catalog(env, made, count)
        catalog[count] = _measure(env, f"/v2/_catalog?n={PAGE}", rate=count == many)
    tags: dict[int, tuple[Samples, Samples]] = {}
    for count in (few, many):
        repository = f"tags/n{count}"
        _seed_tags(env, repository, count)
        tags[count] = _measure(env, f"/v2/{repository}/tags/list?n={PAGE}", rate=count == many)
    return [
        *_rows(env, "tag list page", "tags", tags),
        *_rows(env, "catalog page", "repositories", catalog),
    ]
