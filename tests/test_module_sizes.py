"""DESIGN.md's size rule: one concept per module, split before 600 lines (tests too)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 600
MODULES = sorted(
    path
    for folder in ("mirror", "tests", "bench")
    for path in (ROOT / folder).rglob("*.py")
    if ".venv" not in path.parts and "node_modules" not in path.parts
)


def test_modules_are_found() -> None:
    assert len(MODULES) > 100
    assert ROOT / "mirror" / "registryhttp" / "client.py" in MODULES


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_module_is_under_the_limit(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").count("\n")
    assert lines < LIMIT, f"{path.relative_to(ROOT)} has {lines} lines; split it by concept"
