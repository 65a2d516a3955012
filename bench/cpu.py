"""The CPU seconds a server's process tree spent (user + system, from /proc), for
CPU-per-request figures: on a shared machine a request rate moves with what the other
tenants do, while the CPU a request costs the server barely does (a 5% or 10% bar on the
rate can flip from run to run; the same bar on CPU per request holds).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from bench.loadgen import Rate
from bench.rss import PROC, find_server, process_tree

_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime


def tree_cpu_seconds(config_path: Path) -> float:
    """CPU seconds of the server started with `config_path` and its workers so far."""
    return sum(_cpu_seconds(pid) for pid in process_tree(find_server(config_path)))


def per_request(config_path: Path, load: Callable[[], Rate]) -> tuple[Rate, float]:
    """Run `load` against the server; its rate and the server's CPU microseconds per
    request meanwhile."""
    before = tree_cpu_seconds(config_path)
    rate = load()
    spent = tree_cpu_seconds(config_path) - before
    return rate, 1e6 * spent / max(rate.requests, 1)
