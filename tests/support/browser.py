"""Debian's `chromium`, headless, as the dashboard's real-browser tests drive it: the DOM
after the page's scripts ran (`--dump-dom`), and screenshots (`--screenshot`)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.binaries import require_binary

TIMEOUT = 90.0
DESKTOP = (1280, 1000)
PHONE = (412, 915)


class Browser:
    def __init__(self, profile: Path) -> None:
        self.binary = require_binary("chromium")
        self.profile = profile

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [
            self.binary,
            "--headless",
            "--no-sandbox",  # root in CI; the pages are our own, on loopback
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
            "--disable-extensions",
            "--disable-background-networking",
            f"--user-data-dir={self.profile}",
            "--virtual-time-budget=3000",
            *args,
        ]
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=TIMEOUT, check=False
        )
        if result.returncode != 0:
            raise AssertionError(f"chromium failed ({result.returncode}): {result.stderr[-2000:]}")
        return result

    def dom(self, url: str) -> str:
        """The page's DOM as the browser built it, serialised."""
        return self._run("--dump-dom", url).stdout

    def screenshot(self, url: str, path: Path, size: tuple[int, int] = DESKTOP) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._run(f"--screenshot={path}", f"--window-size={size[0]},{size[1]}", url)
        if not path.is_file() or path.stat().st_size == 0:
            raise AssertionError(f"chromium wrote no screenshot at {path}")
        return path
