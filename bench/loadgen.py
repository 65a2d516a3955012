"""The load generators, all native programs so they are never the bottleneck.

curl downloads blobs (throughput, time to first byte; several processes for parallel
streams), wrk measures GET request rates and latencies, and ab (ApacheBench) measures HEAD
rates: wrk 4.1 cannot, because its HTTP parser waits for a body after a HEAD response that
carries Content-Length (wg/wrk issue 198), so every HEAD ends in a timeout.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

REQUEST_TIMEOUT = 30  # seconds one request may take before wrk gives up on it


class LoadError(RuntimeError):
    """A load generator failed, or the server answered with errors."""


@dataclass(frozen=True, slots=True)
class Transfer:
    """One curl download."""

    status: int
    size: int
    total: float  # seconds from start to the last byte
    first_byte: float  # seconds from start to the first byte of the response


@dataclass(frozen=True, slots=True)
class Rate:
    """One request-rate measurement."""

    requests: int
    per_second: float
    median_latency: float | None  # seconds; None where the tool does not report it


_CURL_FORMAT = "%{http_code} %{size_download} %{time_total} %{time_starttransfer}"


def _curl_command(url: str, timeout: float) -> list[str]:
    return [
        "curl",
        "--silent",
        "--show-error",
        "--noproxy",
        "*",
        "--max-time",
        f"{timeout:g}",
        "--output",
        "/dev/null",
        "--write-out",
        _CURL_FORMAT,
        url,
    ]


def _transfer(stdout: str, stderr: str, returncode: int, url: str, size: int) -> Transfer:
    if returncode != 0:
        raise LoadError(f"curl {url} exited {returncode}: {stderr.strip()}")
    status, got, total, first = stdout.split()
    transfer = Transfer(int(status), int(got), float(total), float(first))
    if transfer.status != 200 or transfer.size != size:
        raise LoadError(
            f"curl {url}: status {transfer.status}, {transfer.size} bytes (expected 200, {size})"
        )
    return transfer


def download(url: str, size: int, *, timeout: float) -> Transfer:
    """GET `url` into /dev/null; raises LoadError unless it is a 200 of `size` bytes."""
    proc = subprocess.run(
        _curl_command(url, timeout),
        capture_output=True,
        text=True,
        timeout=timeout + 10,
        check=False,
    )
    return _transfer(proc.stdout, proc.stderr, proc.returncode, url, size)


def parallel_download(url: str, size: int, streams: int, *, timeout: float) -> float:
    """`streams` curl processes GET `url` at once; returns the wall time until all are done."""
    started = time.perf_counter()
    procs = [
        subprocess.Popen(
            _curl_command(url, timeout),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(streams)
    ]
    outputs = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=timeout + 10)
            outputs.append((out, err, proc.returncode))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    wall = time.perf_counter() - started
    for out, err, code in outputs:
        _transfer(out, err, code, url, size)
    return wall


_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def _seconds(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise LoadError(f"cannot read the duration {text!r}")
    return float(match[1]) * _UNITS[match[2]]


def parse_wrk(output: str) -> Rate:
    """Read wrk's report (run with --latency); raises LoadError on any failed request."""
    total = re.search(r"^\s*(\d+) requests in ", output, re.MULTILINE)
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.MULTILINE)
    if total is None or rate is None:
        raise LoadError(f"cannot read wrk's report:\n{output}")
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if bad is not None:
        raise LoadError(f"wrk: {bad[1]} of {total[1]} responses were errors")
    errors = re.search(r"Socket errors: (.*)", output)
    if errors is not None:
        raise LoadError(f"wrk socket errors: {errors[1]}")
    if int(total[1]) == 0:
        raise LoadError("wrk completed no request")
    latency = _seconds(p50[1]) if p50 is not None else None
    return Rate(int(total[1]), float(rate[1]), latency)


def wrk(
    url: str,
    *,
    connections: int,
    threads: int,
    seconds: int,
    headers: Mapping[str, str] | None = None,
) -> Rate:
    """GET `url` for `seconds` over `connections` keep-alive connections."""
    # A slow answer should count, late, rather than abort the measurement: wrk's default
    # timeout (2 s) is shorter than some list pages take under load.
    cmd = ["wrk", f"-c{connections}", f"-t{threads}", f"-d{seconds}s", "--latency"]
    cmd += ["--timeout", f"{REQUEST_TIMEOUT}s"]
    for name, value in (headers or {}).items():
        cmd += ["-H", f"{name}: {value}"]
    cmd.append(url)
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=seconds + REQUEST_TIMEOUT + 30, check=False
    )
    if proc.returncode != 0:
        raise LoadError(f"wrk exited {proc.returncode}: {proc.stderr.strip()}")
    return parse_wrk(proc.stdout)


def parse_ab(output: str) -> Rate:
    """Read ApacheBench's report; raises LoadError on any failed or non-2xx request."""
    complete = re.search(r"^Complete requests:\s+(\d+)", output, re.MULTILINE)
    rate = re.search(r"^Requests per second:\s+([\d.]+)", output, re.MULTILINE)
    if complete is None or rate is None:
        raise LoadError(f"cannot read ab's report:\n{output}")
    for label in ("Failed requests", "Non-2xx responses"):
        bad = re.search(rf"^{label}:\s+(\d+)", output, re.MULTILINE)
        if bad is not None and int(bad[1]) > 0:
            raise LoadError(f"ab: {label.lower()}: {bad[1]} of {complete[1]}")
    if int(complete[1]) == 0:
        raise LoadError("ab completed no request")
    return Rate(int(complete[1]), float(rate[1]), None)


def ab_head(
    url: str,
    *,
    connections: int,
    seconds: int,
    headers: Sequence[tuple[str, str]] = (),
) -> Rate:
    """HEAD `url` for `seconds` over `connections` keep-alive connections."""
    # -n lifts the 50,000-request cap that -t implies; -t still ends the run.
    cmd = ["ab", "-q", "-i", "-k", f"-c{connections}", f"-t{seconds}", "-n10000000"]
    for name, value in headers:
        cmd += ["-H", f"{name}: {value}"]
    cmd.append(url)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30, check=False)
    if proc.returncode != 0:
        raise LoadError(f"ab exited {proc.returncode}: {proc.stderr.strip() or proc.stdout}")
    return parse_ab(proc.stdout)
