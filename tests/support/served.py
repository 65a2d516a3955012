"""`mirror serve` as a process the test may signal (SIGTERM, SIGKILL) and start again
on the same storage, queues and port."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen
from typing import Any

import yaml

from tests.support.mirrorproc import mirror_config
from tests.support.processes import running


@dataclass
class Served:
    proc: Popen[bytes]
    url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def serve_mirror(
    workdir: Path,
    port: int,
    *,
    name: str = "mirror",
    http: Mapping[str, Any] | None = None,
    **options: Any,
) -> Iterator[Served]:
    """Start (again) the mirror `name` under `workdir` on `port`; `options` go to
    `mirror_config` (its `extra` sections too), `http` keys are added to its section.
    Stopped with SIGTERM at the end if it still runs."""
    root = workdir / f"{name}-root"
    config_path = workdir / f"{name}-config.yml"
    config = mirror_config(root, port, **options)
    config["http"].update(http or {})
    config_path.write_text(yaml.safe_dump(config))
    log_path = workdir / f"{name}.log"
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "mirror", "serve", "--config", str(config_path)]
    with running(cmd, log_path=log_path, ready_url=f"{url}/v2/", start_timeout=30) as proc:
        yield Served(proc, url, log_path)
