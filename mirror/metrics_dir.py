"""The directory several worker processes share their metric values through.

prometheus-client's multiprocess mode keeps each process's values in files named after
its pid. The server's main process prepares a fresh directory of its own before it
starts the workers (`prepare`); files of workers that died stay, so their counters keep
counting, but their ``live`` gauges are dropped when a scrape finds the process gone
(`forget_dead_processes`), since neither granian nor uvicorn tells the app that a
sibling worker died.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from pathlib import Path
from typing import Final

# Set by the server's main process before it starts the workers (`mirror.metrics` makes
# prometheus-client follow it, also in a worker forked after the client was imported).
MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
_LIVE_FILE = re.compile(r"gauge_live[a-z]+_(\d+)\.db")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def prepare(base: str | Path, pid: int | None = None) -> Path:
    """A fresh, empty directory for this server (`pid`, default this process) under
    `base`; directories of servers that are gone are removed, those of servers still
    running beside this one (sharing a cache directory) are left alone."""
    base = Path(base)
    pid = os.getpid() if pid is None else pid
    base.mkdir(parents=True, exist_ok=True)
    for entry in base.iterdir():
        if entry.name.isdigit() and (int(entry.name) == pid or not _alive(int(entry.name))):
            shutil.rmtree(entry, ignore_errors=True)
    own = base / str(pid)
    own.mkdir()
    return own


def forget_dead_processes(directory: str | Path) -> list[int]:
    """Drop the live gauges of processes that no longer run; return their pids."""
    from prometheus_client.multiprocess import mark_process_dead

    gone: set[int] = set()
    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir(directory):
            found = _LIVE_FILE.fullmatch(name)
            if found is not None and not _alive(int(found.group(1))):
                gone.add(int(found.group(1)))
    for pid in gone:
        mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]
    return sorted(gone)
