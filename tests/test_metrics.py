"""The metrics registry on prometheus-client: values, exposition, and worker processes
adding up through the multiprocess directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mirror.metrics import MetricsRegistry
from mirror.metrics_dir import forget_dead_processes, prepare
from tests.support.scrape import sample

WORKER = """
import sys
from mirror.metrics import MetricsRegistry
metrics = MetricsRegistry()
requests = metrics.counter("mirror_test_requests_total", "requests", ("route",))
requests.inc("base", amount=int(sys.argv[1]))
metrics.gauge("mirror_test_active", "active").set(value=int(sys.argv[1]))
metrics.gauge("mirror_test_up", "up", mode="livemin").set(value=int(sys.argv[1]) % 2)
if len(sys.argv) > 2:
    sys.stdout.buffer.write(metrics.render())
"""


def run_worker(directory: Path, *args: str) -> str:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    done = subprocess.run(
        [sys.executable, "-c", WORKER, *args], env=env, capture_output=True, timeout=60, check=True
    )
    return done.stdout.decode()


def test_counters_gauges_and_histograms_render_and_read_back() -> None:
    metrics = MetricsRegistry()
    requests = metrics.counter("mirror_x_requests_total", "requests", ("route", "status"))
    requests.inc("base", "200")
    requests.inc("base", "200", amount=2)
    gauge = metrics.gauge("mirror_x_active", "active")
    gauge.inc(amount=3)
    gauge.dec()
    latency = metrics.histogram("mirror_x_seconds", "latency", ("route",), buckets=(0.1, 1))
    latency.observe("base", value=0.5)
    assert requests.get("base", "200") == 3
    assert requests.get("other", "200") == 0
    assert gauge.get() == 2
    assert latency.get("base") == 1
    text = metrics.render().decode()
    assert sample(text, "mirror_x_requests_total", route="base", status="200") == 3
    assert sample(text, "mirror_x_active") == 2
    assert sample(text, "mirror_x_seconds_bucket", route="base", le="0.1") == 0
    assert sample(text, "mirror_x_seconds_bucket", route="base", le="1.0") == 1
    assert "_created" not in text


def test_asking_again_gives_the_same_metric_and_another_shape_is_refused() -> None:
    metrics = MetricsRegistry()
    first = metrics.counter("mirror_y_total", "y", ("a",))
    assert metrics.counter("mirror_y_total", "", ("a",)) is first
    with pytest.raises(ValueError, match="another shape"):
        metrics.counter("mirror_y_total", "", ("b",))
    with pytest.raises(ValueError, match="another shape"):
        metrics.gauge("mirror_y_total", "")
    with pytest.raises(ValueError, match="takes labels"):
        first.inc()


def test_workers_add_up_in_one_scrape(tmp_path: Path) -> None:
    directory = prepare(tmp_path / "prometheus")
    run_worker(directory, "2")
    text = run_worker(directory, "3", "render")
    # Counters of a worker that is gone still count; its live gauges do not.
    assert sample(text, "mirror_test_requests_total", route="base") == 5
    assert sample(text, "mirror_test_active") == 3
    assert sample(text, "mirror_test_up") == 1


def test_a_client_imported_before_the_directory_was_set_follows_it(tmp_path: Path) -> None:
    """As in a worker forked from a server process that had imported it already."""
    directory = prepare(tmp_path / "prometheus")
    script = (
        "import os, sys\n"
        "from mirror.metrics import MetricsRegistry\n"
        "os.environ['PROMETHEUS_MULTIPROC_DIR'] = sys.argv[1]\n"
        "MetricsRegistry().counter('mirror_late_total', 'late').inc()\n"
    )
    env = {key: value for key, value in os.environ.items() if key != "PROMETHEUS_MULTIPROC_DIR"}
    subprocess.run([sys.executable, "-c", script, str(directory)], env=env, check=True,
                   timeout=60)  # fmt: skip
    assert any(name.startswith("counter_") for name in os.listdir(directory))


def test_dead_processes_lose_their_live_gauges(tmp_path: Path) -> None:
    directory = prepare(tmp_path / "prometheus")
    run_worker(directory, "1")
    names = sorted(os.listdir(directory))
    assert any(name.startswith("gauge_livesum_") for name in names)
    gone = forget_dead_processes(directory)
    assert len(gone) == 1
    assert not any(name.startswith("gauge_live") for name in os.listdir(directory))
    assert any(name.startswith("counter_") for name in os.listdir(directory))


def test_prepare_removes_the_directories_of_servers_that_are_gone(tmp_path: Path) -> None:
    base = tmp_path / "prometheus"
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, check=True, timeout=60)  # fmt: skip
    dead = base / finished.stdout.decode().strip()
    (dead / "counter_1.db").parent.mkdir(parents=True)
    (dead / "counter_1.db").write_bytes(b"x")
    alive = base / str(os.getppid())
    alive.mkdir()
    own = prepare(base)
    assert own == base / str(os.getpid())
    assert list(own.iterdir()) == []
    assert not dead.exists()
    assert alive.exists()
