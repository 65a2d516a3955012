"""The workloads by number, the order they run in, and running a selection of them."""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from bench.archive import archive_throughput
from bench.auth import auth_rates
from bench.blobs import first_byte, parallel_streams, single_stream
from bench.copies import copy_registry_to_registry
from bench.dashboard import dashboard_pages
from bench.env import Env
from bench.gc import garbage_collection
from bench.lifecycle import access_recording
from bench.lists import list_pages
from bench.manifests import manifest_rates
from bench.objstore import object_storage
from bench.pulls import cold_pull, crowd_pull, push, warm_pull
from bench.results import Row, Samples, failed, mirror_at_most
from bench.webhooks import dead_endpoint_push

RSS_BAR_MIB = 200.0
PEAK_SOURCES = (2, 5)  # workloads during which workload 10 samples memory


@dataclass(frozen=True, slots=True)
class Workload:
    number: int
    name: str  # shown when the workload fails before producing rows
    run: Callable[[Env], list[Row]]


def peak_memory(env: Env) -> list[Row]:
    """Workload 10: the peaks sampled while workloads 2 and 5 ran."""
    rows = []
    for source in PEAK_SOURCES:
        title = f"peak RSS of the server during workload {source}"
        peaks: Samples | None = env.peaks.get(source)
        if peaks is None or not peaks.mirror or not peaks.reference:
            rows.append(failed(10, title, f"workload {source} did not complete"))
            continue
        mirror = max(peaks.mirror)
        reference = max(peaks.reference)
        bar = mirror_at_most(RSS_BAR_MIB, "MiB")
        rows.append(Row(10, title, "max RSS, process tree (MiB)", mirror, reference, bar))
    return rows


WORKLOADS: dict[int, Workload] = {
    w.number: w
    for w in (
        Workload(1, "GET cached blob, 1 stream", single_stream),
        Workload(2, "GET cached blob, parallel streams", parallel_streams),
        Workload(3, "manifest GET/HEAD rates", manifest_rates),
        Workload(4, "cold pull-through", cold_pull),
        Workload(5, "concurrent pulls of an uncached image", crowd_pull),
        Workload(6, "warm pull", warm_pull),
        Workload(7, "push", push),
        Workload(8, "first byte of an uncached blob", first_byte),
        Workload(9, "tag list and catalog pages", list_pages),
        Workload(10, "peak RSS", peak_memory),
        Workload(11, "garbage collection", garbage_collection),
        Workload(12, "push with a dead webhook endpoint", dead_endpoint_push),
        Workload(13, "export / import of a store", archive_throughput),
        Workload(14, "authenticated manifest and blob GETs", auth_rates),
        Workload(15, "object storage (S3): push, pulls, replicas, redirects", object_storage),
        Workload(16, "hit-path cost of access recording (eviction on vs off)", access_recording),
        Workload(17, "mirror copy vs skopeo copy --all", copy_registry_to_registry),
        Workload(18, "dashboard pages at many repositories", dashboard_pages),
    )
}


def parse_only(text: str | None) -> list[int]:
    """`"3,1"` -> `[1, 3]`; None -> every workload. Workload 10 brings 2 and 5 along.

    Raises ValueError on anything that is not a known workload number.
    """
    if text is None:
        return sorted(WORKLOADS)
    chosen: set[int] = set()
    for raw in text.split(","):
        part = raw.strip()
        if not part.isdigit() or int(part) not in WORKLOADS:
            raise ValueError(f"unknown workload {part!r}; choose from 1-{max(WORKLOADS)}")
        chosen.add(int(part))
    if 10 in chosen:
        chosen.update(PEAK_SOURCES)
    return sorted(chosen)


def run(env: Env, numbers: Iterable[int]) -> list[Row]:
    """Run the workloads in order; a failure becomes an ERROR row and the run goes on."""
    rows: list[Row] = []
    for number in numbers:
        workload = WORKLOADS[number]
        print(f"bench: workload {number}: {workload.name} ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        try:
            rows.extend(workload.run(env))
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            rows.append(failed(number, workload.name, f"{type(exc).__name__}: {exc}"))
        elapsed = time.perf_counter() - started
        print(f"bench: workload {number} took {elapsed:.1f} s", file=sys.stderr, flush=True)
    return rows
