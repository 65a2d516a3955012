"""Find the external programs interop tests need, or skip (locally) / fail (in CI)."""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

import pytest

_FALSE = frozenset({"", "0", "false", "no", "off"})


def in_ci() -> bool:
    """True when the CI environment variable is set to something other than a false value."""
    return os.environ.get("CI", "").strip().lower() not in _FALSE


def unavailable(reason: str) -> NoReturn:
    """Fail the test in CI, where every tool must be present; skip it elsewhere."""
    if in_ci():
        pytest.fail(f"{reason} (CI is set, so this is a failure, not a skip)", pytrace=False)
    pytest.skip(reason)


def require_binary(name: str) -> str:
    """Return the absolute path of executable `name` on PATH, or skip/fail the test."""
    path = shutil.which(name)
    if path is None:
        unavailable(f"{name!r} not found on PATH; install it (see .ci/run) to run this test")
    return path


def require_root(reason: str = "this test") -> None:
    """Skip/fail unless running as root (containerd needs root for its snapshots)."""
    if os.geteuid() != 0:
        unavailable(f"{reason} needs root (euid is {os.geteuid()})")
