"""The benchmark harness: a real `python -m bench --quick` run, and its parts one by one.

The quick run starts real servers and real clients; it checks that every workload
produced a row and that the report is written, never how fast anything was.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.loadgen import LoadError, parse_ab, parse_wrk
from bench.plan import WORKLOADS, parse_only
from bench.results import Bar, Goal, Row, Samples, at_least, at_most, exactly, failed, number
from bench.rss import PeakSampler, find_server, process_tree, tree_rss
from bench.settings import FULL, QUICK, human_size
from bench.table import render
from bench.upstreamlog import UpstreamWindow
from tests.support.binaries import require_binary

ROOT = Path(__file__).resolve().parent.parent
WORKLOAD_NUMBERS = set(WORKLOADS)


def table_rows(output: str) -> list[list[str]]:
    """The body cells of the Markdown table in `output` (header and rule left out)."""
    lines = [line for line in output.splitlines() if line.startswith("|")]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]
    return [row for row in rows[2:] if row]


@pytest.mark.interop
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_quick_run_prints_a_row_for_every_workload_and_writes_the_report(
    tmp_path: Path,
) -> None:
    for program in ("docker-registry", "skopeo", "curl", "wrk", "ab"):
        require_binary(program)
    out = tmp_path / "BENCHMARKS.md"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=800,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    rows = table_rows(proc.stdout)
    assert {int(row[0]) for row in rows} == WORKLOAD_NUMBERS
    for row in rows:
        assert len(row) == 8, row
        assert row[7] in ("yes", "NO"), row
        float(row[3].replace(",", ""))
        float(row[4].replace(",", ""))
    report = out.read_text()
    assert "python -m bench --quick --out" in report
    assert table_rows(report)[: len(rows)] == rows
    for label in ("CPU", "cores", "RAM", "kernel", "Python", "granian", "uvicorn"):
        assert re.search(rf"^\| {label} \| .+ \|$", report, re.MULTILINE), label
    assert "docker-registry github.com/docker/distribution" in report
    assert "## Raw samples" in report


def test_missing_programs_stop_the_run_before_it_starts(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "missing programs: docker-registry, skopeo, curl, wrk, ab" in proc.stderr
    assert "apache2-utils" in proc.stderr


def test_an_unknown_workload_number_is_a_usage_error() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--only", "1,42"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "unknown workload '42'" in proc.stderr


def test_only_selects_sorted_workloads_and_memory_brings_its_sources() -> None:
    assert parse_only(None) == sorted(WORKLOAD_NUMBERS)
    assert parse_only("9, 3,3") == [3, 9]
    assert parse_only("10") == [2, 5, 10]
    for bad in ("0", "19", "x", "1,,2"):
        with pytest.raises(ValueError):
            parse_only(bad)


WRK_REPORT = """\
Running 5s test @ http://127.0.0.1:5000/v2/a/manifests/latest
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.20ms  300.00us   9.00ms   90.00%
    Req/Sec    12.00k     1.00k   14.00k    70.00%
  Latency Distribution
     50%  850.00us
     75%    1.30ms
     90%    1.90ms
     99%    4.00ms
  120000 requests in 5.00s, 50.00MB read
Requests/sec:  23999.50
Transfer/sec:     10.00MB
"""


def test_wrk_report_gives_rate_and_median_latency() -> None:
    rate = parse_wrk(WRK_REPORT)
    assert rate.requests == 120_000
    assert rate.per_second == 23999.50
    assert rate.median_latency == pytest.approx(850e-6)
    slow = WRK_REPORT.replace("50%  850.00us", "50%    1.50s")
    assert parse_wrk(slow).median_latency == pytest.approx(1.5)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("  Non-2xx or 3xx responses: 7\n", "7 of 120000 responses were errors"),
        ("  Socket errors: connect 0, read 3, write 0, timeout 0\n", "socket errors"),
    ],
)
def test_wrk_report_with_failures_is_an_error(extra: str, message: str) -> None:
    report = WRK_REPORT.replace("Requests/sec", extra + "Requests/sec")
    with pytest.raises(LoadError, match=message):
        parse_wrk(report)


def test_wrk_report_without_requests_or_unreadable_is_an_error() -> None:
    with pytest.raises(LoadError, match="no request"):
        parse_wrk(WRK_REPORT.replace("120000 requests", "0 requests"))
    with pytest.raises(LoadError, match="cannot read"):
        parse_wrk("unable to connect to 127.0.0.1:1 Connection refused")


AB_REPORT = """\
Concurrency Level:      32
Time taken for tests:   5.000 seconds
Complete requests:      50000
Failed requests:        0
Keep-Alive requests:    50000
Total transferred:      20000000 bytes
Requests per second:    10000.00 [#/sec] (mean)
"""


def test_ab_report_gives_rate_and_rejects_failures() -> None:
    rate = parse_ab(AB_REPORT)
    assert (rate.requests, rate.per_second, rate.median_latency) == (50_000, 10_000.0, None)
    with pytest.raises(LoadError, match="failed requests: 4"):
        parse_ab(AB_REPORT.replace("Failed requests:        0", "Failed requests:        4"))
    non_2xx = AB_REPORT + "Non-2xx responses:      9\n"
    with pytest.raises(LoadError, match="non-2xx responses: 9"):
        parse_ab(non_2xx)
    with pytest.raises(LoadError, match="cannot read"):
        parse_ab("apr_socket_connect(): Connection refused (111)")


def test_bars_read_ratios_or_the_mirror_value() -> None:
    assert at_least(1.2).met(120, 100) is True
    assert at_least(1.2).met(119, 100) is False
    assert at_most(0.75).met(0.75, 1.0) is True
    assert at_most(0.75).met(0.8, 1.0) is False
    assert at_most(1.0).met(1.0, None) is None
    assert exactly(1.0).met(1.004, 9.0) is True
    assert exactly(1.0).met(2.0, 9.0) is False
    memory = Bar(Goal.MIRROR_AT_MOST, 200, "MiB")
    assert memory.met(150, 900) is True
    assert memory.text() == "mirror <= 200 MiB"
    assert at_least(5).text() == "ratio >= 5.00x"


def test_table_shows_values_ratio_verdict_and_errors() -> None:
    rows = [
        Row(1, "GET blob", "throughput (MiB/s)", 1500.0, 1000.0, at_least(1.2)),
        Row(4, "cold pull", "time (s)", 2.0, 1.0, at_most(0.9)),
        failed(7, "push", "SkopeoError: exited 1\nmanifest invalid"),
    ]
    text = render(rows)
    cells = table_rows(text)
    assert cells[0] == [
        "1",
        "GET blob",
        "throughput (MiB/s)",
        "1,500",
        "1,000",
        "1.50x",
        "ratio >= 1.20x",
        "yes",
    ]
    assert cells[1][5:] == ["2.00x", "ratio <= 0.90x", "NO"]
    assert cells[2][0] == "7"
    assert cells[2][7] == "ERROR: SkopeoError: exited 1 manifest invalid"
    widths = {len(line) for line in text.splitlines()}
    assert len(widths) == 1


def test_numbers_keep_three_significant_digits() -> None:
    assert number(23999.5) == "24,000"
    assert number(1.23456) == "1.23"
    assert number(0.012345) == "0.0123"
    assert number(0) == "0"


def test_samples_report_medians_per_side() -> None:
    samples = Samples()
    for side, value in [("mirror", 3.0), ("reference", 10.0), ("mirror", 1.0)]:
        samples.add(side, value)
    samples.add("mirror", 2.0)
    samples.add("reference", 30.0)
    assert samples.medians() == (2.0, 20.0)
    assert samples.describe() == "mirror [3.00, 1.00, 2.00]; reference [10.0, 30.0]"
    with pytest.raises(ValueError):
        Samples().medians()


def test_upstream_window_counts_only_gets_of_the_image_blobs() -> None:
    window = UpstreamWindow({"sha256:aa": 100, "sha256:bb": 900})
    window.record("GET", "/v2/bench/x/blobs/sha256:bb", 900)
    window.record("GET", "/v2/bench/x/blobs/sha256:bb", 450)  # a second, partial fetch
    window.record("HEAD", "/v2/bench/x/blobs/sha256:aa", 0)
    window.record("GET", "/v2/bench/x/blobs/sha256:cc", 5000)  # another image's blob
    window.record("GET", "/v2/bench/x/manifests/latest", 700)
    window.record("PATCH", "/v2/bench/x/blobs/uploads/123", 0)
    assert window.sent == 1350
    assert window.ratio == pytest.approx(1.35)
    assert window.describe() == "2 upstream blob GETs for 2 blobs, 1,350 of 1,000 bytes (1.35x)"


def test_memory_sampler_sums_the_process_tree(tmp_path: Path) -> None:
    marker = tmp_path / "server-config.yml"
    marker.write_text("")
    # A parent holding ~40 MiB with a child of its own, both named by the marker path.
    script = (
        "import subprocess, sys, time; block = bytearray(40 << 20); "
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)']); "
        "print('ready', flush=True); time.sleep(30)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(marker)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        root = find_server(marker)
        assert root == proc.pid
        tree = process_tree(root)
        assert len(tree) == 2
        assert tree_rss(root) > 40 << 20
        sampler = PeakSampler(root, interval=0.01)
        sampler.start()
        for _ in range(500):
            if sampler.samples >= 3:
                break
            time.sleep(0.01)
        peak = sampler.stop()
        assert sampler.samples >= 3
        assert sampler.processes == 2
        assert peak > 40 << 20
    finally:
        for pid in process_tree(proc.pid) - {proc.pid}:
            os.kill(pid, 9)
        proc.kill()
        proc.wait(timeout=10)
    with pytest.raises(LookupError):
        find_server(tmp_path / "nothing-runs-with-this.yml")


def test_scales_and_sizes() -> None:
    assert human_size(FULL.blob_size) == "256 MiB"
    assert human_size(QUICK.blob_size) == "16 MiB"
    assert human_size(FULL.five_size) == "65 MB"
    assert human_size(4_000) == "4 kB"
    assert QUICK.rounds == 1
    assert FULL.rounds == 3
