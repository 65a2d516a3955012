"""Workload 11: garbage collection of a large store, `mirror` against `docker-registry`.

One store of the scale's shape (see `bench.gcstore`: 10,000 manifests and 50,000 blobs
at full scale) is written once; every measurement collects a fresh hard-linked copy of
it (`cp -al`: the collectors only remove names, never change a file, so the copies stay
identical). Each side runs its own command as a process with the same flags and its
output to a file: `python -m mirror garbage-collect CONFIG` and `docker-registry
garbage-collect CONFIG`. Time is the wall time of the process, peak memory its
`ru_maxrss` from `wait4`. After each round both copies must hold the same blobs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml

from bench.env import Env, Side, alternate
from bench.gcstore import blob_names, build_store
from bench.results import Row, Samples, at_most, mirror_at_most
from bench.settings import MiB
from tests.support.binaries import require_binary
from tests.support.distribution import write_config

RSS_BAR_MIB = 200.0
ROOT = Path(__file__).resolve().parent.parent


def run_measured(command: list[str], log: Path, timeout: float) -> tuple[float, int]:
    """Run `command` with its output in `log`: (wall seconds, peak RSS in bytes).

    Raises RuntimeError (with the end of the log) when it fails or outlives `timeout`.
    """
    with log.open("wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT
        )
        watchdog = threading.Timer(timeout, proc.kill)
        watchdog.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            watchdog.cancel()
        elapsed = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        tail = log.read_bytes()[-2000:].decode(errors="replace")
        raise RuntimeError(f"{command[0]} exited {proc.returncode}:\n{tail}")
    return elapsed, usage.ru_maxrss * 1024


def _command(side: Side, config: Path) -> list[str]:
    if side == "reference":
        return [require_binary("docker-registry"), "garbage-collect", str(config)]
    return [sys.executable, "-m", "mirror", "garbage-collect", str(config)]


def _config(side: Side, directory: Path, root: Path) -> Path:
    path = directory / f"{side}-gc.yml"
    if side == "reference":
        return write_config(path, root=root, port=5000)
    config = {"version": 0.1, "storage": {"filesystem": {"rootdirectory": str(root)}}}
    path.write_text(yaml.safe_dump(config))
    return path


def garbage_collection(env: Env) -> list[Row]:
    shape = env.scale.gc_shape
    work = env.workdir / "gc"
    base = work / "base"
    started = time.perf_counter()
    build_store(base, shape)
    env.note(
        f"11 store: {shape.manifests:,} manifests, {shape.blobs:,} blobs in"
        f" {shape.repositories:,} repositories, {shape.orphans:,} unreferenced;"
        f" written in {time.perf_counter() - started:.1f} s"
    )
    seconds, peaks = Samples(), Samples()
    left: dict[Side, set[str]] = {}

    def measure(side: Side, round_number: int) -> None:
        copy = work / f"{side}-{round_number}"
        subprocess.run(["cp", "-al", str(base), str(copy)], check=True, timeout=600)
        config = _config(side, work, copy)
        os.sync()
        elapsed, peak = run_measured(
            _command(side, config), work / f"{side}-{round_number}.log", env.scale.timeout
        )
        seconds.add(side, elapsed)
        peaks.add(side, peak / MiB)
        left[side] = blob_names(copy)
        if len(left) == 2:
            if left["mirror"] != left["reference"]:
                only = left["mirror"] ^ left["reference"]
                raise RuntimeError(f"the collections disagree on {len(only)} blobs")
            left.clear()
        shutil.rmtree(copy)

    alternate(env.scale.rounds, measure)
    env.note(f"11 garbage-collect seconds: {seconds.describe()}")
    env.note(f"11 garbage-collect peak RSS MiB: {peaks.describe()}")
    title = f"garbage-collect, {shape.manifests:,} manifests / {shape.blobs:,} blobs"
    mirror_peak, reference_peak = max(peaks.mirror), max(peaks.reference)
    return [
        Row(11, title, "time (s)", *seconds.medians(), at_most(1.0)),
        Row(
            11,
            title,
            "peak RSS (MiB)",
            mirror_peak,
            reference_peak,
            mirror_at_most(RSS_BAR_MIB, "MiB"),
        ),
    ]
