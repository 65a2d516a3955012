"""Run `mirror` commands (export, import, sync) as processes, and read a store's layout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.support.mirrorproc import mirror_config
from tests.support.processes import free_port

REPOSITORIES = Path("docker/registry/v2/repositories")


def write_mirror_config(path: Path, root: Path, **options: Any) -> Path:
    """A config file like `run_mirror`'s (`mirror_config(**options)`), for commands."""
    port = options.pop("port", None) or free_port()
    path.write_text(yaml.safe_dump(mirror_config(root, port, **options)))
    return path


def mirror_cli(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """`python -m mirror ARGS`, its output captured as text (no check)."""
    return subprocess.run(
        [sys.executable, "-m", "mirror", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def tag_target(root: Path, repository: str, tag: str) -> str | None:
    """The digest a tag points at in a registry:2-layout store, None when untagged."""
    link = root / REPOSITORIES / repository / "_manifests/tags" / tag / "current/link"
    return link.read_text().strip() if link.exists() else None


def stored_tags(root: Path, repository: str) -> list[str]:
    tags = root / REPOSITORIES / repository / "_manifests/tags"
    return sorted(p.name for p in tags.iterdir()) if tags.exists() else []
