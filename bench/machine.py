"""What the numbers were measured on: hardware, kernel, and every program's version."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from bench.settings import MiB


def _first(path: str, key: str) -> str:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def _output(cmd: list[str], default: str = "unknown") -> str:
    """The first line `cmd` prints (stdout, else stderr), or `default` if it prints none."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unavailable ({exc})"
    text = (proc.stdout or proc.stderr).strip()
    return text.splitlines()[0] if text else default


def _package(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _ram() -> str:
    total = _first("/proc/meminfo", "MemTotal")
    try:
        kib = int(total.split()[0])
    except (ValueError, IndexError):
        return total
    return f"{kib * 1024 / (1024 * MiB):.1f} GiB"


def _revision() -> str:
    """The git commit of this checkout, flagged when tracked files differ from it."""
    here = str(Path(__file__).resolve().parent.parent)
    commit = _output(["git", "-C", here, "rev-parse", "--short", "HEAD"])
    changed = _output(["git", "-C", here, "status", "--porcelain", "--untracked-files=no"], "")
    return commit + (" with uncommitted changes" if changed else "")


def load_average() -> str:
    """The system load average: other work on the machine skews every number."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f}"


def _version(cmd: list[str]) -> str:
    """A program's version line without the build details that follow it."""
    return re.split(r" \(| \[", _output(cmd))[0]


def machine_info(load_at_start: str) -> list[tuple[str, str]]:
    """(label, value) pairs describing this machine and the software under test."""
    return [
        ("CPU", _first("/proc/cpuinfo", "model name")),
        ("cores", str(os.cpu_count())),
        ("RAM", _ram()),
        ("kernel", f"{platform.system()} {platform.release()}"),
        ("load average (1, 5, 15 min) at start", load_at_start),
        ("load average (1, 5, 15 min) at end", load_average()),
        ("Python", sys.version.split()[0]),
        ("mirror", _revision()),
        ("granian", _package("granian")),
        ("uvicorn", _package("uvicorn")),
        ("docker-registry", _version(["docker-registry", "--version"])),
        ("skopeo", _version(["skopeo", "--version"])),
        ("curl", _version(["curl", "--version"])),
        ("wrk", _version(["wrk", "-v"])),
        ("ab", _version(["ab", "-V"])),
    ]
