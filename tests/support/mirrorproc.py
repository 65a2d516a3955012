"""Run `mirror serve` as a real server process on loopback, with a generated config."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from tests.support.distribution import RegistryProcess
from tests.support.processes import free_port, running

# A mirror process has what a reference registry process has: URL, root, log, config.
MirrorProcess = RegistryProcess


def mirror_config(
    root: Path,
    port: int,
    *,
    proxy: Mapping[str, Any] | None = None,
    redis: Mapping[str, Any] | None = None,
    delete: bool = True,
    server: str = "uvicorn",
    workers: int = 1,
    extra: Mapping[str, Any] | None = None,
    storage: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """`storage` replaces the filesystem driver at `root` ({"s3": {...}}, "redirect": ...)."""
    config: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "info"},
        "storage": {
            **(storage or {"filesystem": {"rootdirectory": str(root)}}),
            "delete": {"enabled": delete},
        },
        "http": {"addr": f"127.0.0.1:{port}", "server": server, "workers": workers},
    }
    if proxy is not None:
        config["proxy"] = dict(proxy)
    if redis is not None:
        config["redis"] = dict(redis)
    for key, value in (extra or {}).items():
        config[key] = value
    return config


@contextmanager
def run_mirror(
    workdir: Path,
    *,
    port: int | None = None,
    root: Path | None = None,
    name: str = "mirror",
    env: Mapping[str, str] | None = None,
    start_timeout: float = 20.0,
    **options: Any,
) -> Iterator[MirrorProcess]:
    """Start `python -m mirror serve` with a config built by `mirror_config(**options)`.

    `root` lets several processes share one storage directory.
    """
    port = port or free_port()
    root = root or workdir / f"{name}-root"
    config_path = workdir / f"{name}-config.yml"
    config_path.write_text(yaml.safe_dump(mirror_config(root, port, **options)))
    log_path = workdir / f"{name}.log"
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "mirror", "serve", "--config", str(config_path)]
    with running(
        cmd,
        log_path=log_path,
        env=env,
        ready_url=f"{url}/v2/",
        start_timeout=start_timeout,
    ):
        yield MirrorProcess(url, root, log_path, config_path)
