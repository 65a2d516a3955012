"""Peak resident memory of a server's whole process tree (granian forks its workers).

The server is found by its config file path on the command line, which is unique per
server in a run; its process tree is every descendant of that process. A sampler thread
reads VmRSS of each process in the tree every ~20 ms and keeps the largest sum.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PROC = Path("/proc")
INTERVAL = 0.02
TREE_REFRESH = 0.25  # seconds between rescans for new or departed worker processes


def _pids() -> list[int]:
    return [int(entry.name) for entry in PROC.iterdir() if entry.name.isdigit()]


def _parent(pid: int) -> int | None:
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    return int(stat.rsplit(")", 1)[1].split()[1])


def _cmdline(pid: int) -> list[str]:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return []
    return raw.decode(errors="replace").split("\0")


def find_server(config_path: Path) -> int:
    """The pid of the server started with `config_path` (the root if several match).

    Raises LookupError when no process names that file.
    """
    wanted = str(config_path)
    matches = {pid for pid in _pids() if wanted in _cmdline(pid)}
    roots = sorted(pid for pid in matches if _parent(pid) not in matches)
    if not roots:
        raise LookupError(f"no process runs with {wanted}")
    return roots[0]


def process_tree(root: int) -> set[int]:
    """`root` and all of its descendants alive right now."""
    children: dict[int, list[int]] = {}
    for pid in _pids():
        parent = _parent(pid)
        if parent is not None:
            children.setdefault(parent, []).append(pid)
    tree = {root}
    frontier = [root]
    while frontier:
        pid = frontier.pop()
        for child in children.get(pid, ()):
            if child not in tree:
                tree.add(child)
                frontier.append(child)
    return tree


def rss_bytes(pid: int) -> int:
    """VmRSS of one process in bytes; 0 when it is gone (or a kernel thread)."""
    try:
        status = (PROC / str(pid) / "status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def tree_rss(root: int) -> int:
    return sum(rss_bytes(pid) for pid in process_tree(root))


class PeakSampler:
    """Samples the RSS of a process tree in a thread; `peak` is the largest sum seen."""

    def __init__(self, root: int, interval: float = INTERVAL) -> None:
        self.root = root
        self.interval = interval
        self.peak = 0
        self.samples = 0
        self.processes = 0  # the most processes seen in the tree at once
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"rss-{root}", daemon=True)

    def _run(self) -> None:
        tree = process_tree(self.root)
        rescanned = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            if now - rescanned >= TREE_REFRESH:
                tree, rescanned = process_tree(self.root), now
            self.processes = max(self.processes, len(tree))
            self.peak = max(self.peak, sum(rss_bytes(pid) for pid in tree))
            self.samples += 1
            self._stop.wait(self.interval)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(timeout=5.0)
        return self.peak


@contextmanager
def sampling(config_path: Path) -> Iterator[PeakSampler]:
    """Sample the server started with `config_path` for the duration of the with-block."""
    sampler = PeakSampler(find_server(config_path))
    sampler.start()
    try:
        yield sampler
    finally:
        sampler.stop()
