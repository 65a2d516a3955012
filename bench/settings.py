"""How big and how long: the full run and the `--quick` one, in one frozen value."""

from __future__ import annotations

from dataclasses import dataclass

from bench.gcstore import FULL_SHAPE, QUICK_SHAPE, GCShape

MiB = 1 << 20
GiB = 1 << 30
MB = 1_000_000


@dataclass(frozen=True, slots=True)
class Scale:
    """Sizes, counts and durations of one benchmark run."""

    name: str
    rounds: int  # measurements per server and workload; the median is reported
    blob_size: int  # the big single blob (workloads 1, 2, 8) and big layer (5)
    five_layers: tuple[int, ...]  # payload bytes of the 5-layer image (4, 6, 7)
    streams: int  # parallel streams in workload 2
    clients: int  # concurrent pulls in workload 5
    connections: int  # wrk / ab connections in workload 3 and the rate part of 9
    rate_seconds: int  # duration of one request-rate measurement
    few: int  # the small tag list / catalog in workload 9
    many: int  # the large one
    timeout: float  # upper bound of any one client command
    gc_shape: GCShape  # the store garbage-collected in workload 11

    @property
    def five_size(self) -> int:
        return sum(self.five_layers)


FULL = Scale(
    name="full",
    rounds=3,
    blob_size=256 * MiB,
    five_layers=(24 * MB, 17 * MB, 12 * MB, 8 * MB, 4 * MB),
    streams=16,
    clients=8,
    connections=32,
    rate_seconds=5,
    few=100,
    many=10_000,
    timeout=600.0,
    gc_shape=FULL_SHAPE,
)

QUICK = Scale(
    name="quick",
    rounds=1,
    blob_size=16 * MiB,
    five_layers=(1_500_000, 1_000_000, 750_000, 500_000, 250_000),
    streams=16,
    clients=8,
    connections=32,
    rate_seconds=1,
    few=100,
    many=300,
    timeout=120.0,
    gc_shape=QUICK_SHAPE,
)


def human_size(size: int) -> str:
    """`268435456` -> `256 MiB`, `65000000` -> `65 MB`: the unit that divides evenly."""
    if size >= MiB and size % MiB == 0:
        return f"{size // MiB} MiB"
    if size >= MB:
        return f"{size / MB:.3g} MB"
    return f"{size / 1000:.3g} kB"


def human_count(count: int) -> str:
    return f"{count:,}"
