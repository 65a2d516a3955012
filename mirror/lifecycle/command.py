"""`mirror garbage-collect`: one collection from the command line, printed as it goes.

Lines go to stdout like registry:2's (`<repo>: marking manifest ...`, `blob eligible for
deletion: ...`), then the summary; warnings and errors go to stderr. The exit status is
0 when the collection completed without errors, 1 otherwise (also when another
collection holds the lease).
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from typing import TextIO

from mirror.coordination.file_leases import FileCoordinator
from mirror.coordination.leases import Coordinator, LocalCoordinator
from mirror.lifecycle.collector import GarbageCollector, GCError, GCOptions, collect_exclusively
from mirror.store.driver import StorageDriver


def run_garbage_collect(
    driver: StorageDriver,
    options: GCOptions,
    *,
    lease_directory: str | None = None,
    quiet: bool = False,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Collect once; leases live in `lease_directory` (shared with the serving
    processes) or, without one, in this process only. Returns the exit status."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr

    def emit(line: str) -> None:
        out.write(line + "\n")

    def warn(line: str) -> None:
        err.write(f"garbage-collect: {line}\n")

    collector = GarbageCollector(driver, options, emit=None if quiet else emit, warn=warn)
    coordinator: Coordinator = (
        FileCoordinator(lease_directory) if lease_directory else LocalCoordinator()
    )
    owner = f"mirror garbage-collect, pid {os.getpid()} on {socket.gethostname()}"

    async def collect() -> None:
        try:
            await collect_exclusively(coordinator, collector, owner=owner)
        finally:
            await coordinator.aclose()

    try:
        asyncio.run(collect())
    except GCError as exc:
        err.write(f"garbage-collect: {exc}\n")
        err.write(collector.report.summary() + "\n")
        return 1
    finally:
        out.flush()
    print(collector.report.summary(), file=out, flush=True)
    return 1 if collector.report.errors else 0
