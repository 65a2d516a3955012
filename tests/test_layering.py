"""The import layering of DESIGN.md: a module imports only its own layer or lower ones."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "mirror"

# Most specific prefix first.
LAYERS: list[tuple[str, int]] = [
    ("mirror.store.driver", 1),
    ("mirror.store.drivers", 1),
    # The configuration reads the drivers' declarations (drivers never read it).
    ("mirror.config", 1),
    ("mirror.coordination", 1),
    ("mirror.store", 2),
    ("mirror.registryhttp", 2),
    ("mirror.upstream", 2),
    ("mirror.cache", 3),
    ("mirror.auth", 3),
    ("mirror.events", 3),
    ("mirror.health", 3),
    ("mirror.archive", 3),
    ("mirror.sync", 3),
    ("mirror.lifecycle", 3),
    ("mirror.proxy", 4),
    # The client package and the copy engine of the CLI verbs (over registryhttp).
    ("mirror.client", 4),
    # The dashboard reads the store, metadata and metrics; the proxy mounts it.
    ("mirror.ui", 4),
    ("mirror.__main__", 5),
    ("mirror.commands", 5),
    ("mirror.server", 5),
    ("mirror.headertimeout", 5),
    ("mirror.worker", 5),
    ("mirror.uvicorn_sendfile", 5),
    ("mirror", 0),
]
# Only the composition root and the CLI read the configuration.
CONFIG_READERS = (
    "mirror.proxy.app",
    # The composition root's part for notifications, health, debug listener and drain.
    "mirror.proxy.operability",
    # ... and for online garbage collection and cache eviction.
    "mirror.proxy.lifecycle",
    # The composition root's part for access control (`auth`) and the token service.
    "mirror.proxy.authenticating",
    # ... and for the dashboard (http.ui).
    "mirror.proxy.dashboard",
    "mirror.commands.servercli",
    "mirror.commands.storecli",
    "mirror.server",
    "mirror.config",
    "mirror.commands.archive",
    "mirror.commands.sync",
    "mirror.commands.du",
)


def layer_of(module: str) -> int:
    for prefix, layer in LAYERS:
        if module == prefix or module.startswith(prefix + "."):
            return layer
    raise AssertionError(f"no layer for {module}")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    return [name for name in found if name == "mirror" or name.startswith("mirror.")]


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_imports_point_down(path: Path) -> None:
    module = module_name(path)
    own = layer_of(module)
    for imported in imports_of(path):
        assert layer_of(imported) <= own, f"{module} (L{own}) imports {imported}"
        if imported.startswith("mirror.config") and not module.startswith("mirror.config"):
            assert module in CONFIG_READERS, f"{module} reads the configuration"


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_store_and_upstream_do_not_know_each_other(path: Path) -> None:
    module = module_name(path)
    for imported in imports_of(path):
        if module.startswith("mirror.store"):
            assert not imported.startswith("mirror.upstream"), f"{module} imports {imported}"
        if module.startswith(("mirror.upstream", "mirror.registryhttp")):
            assert not imported.startswith("mirror.store"), f"{module} imports {imported}"


def test_every_module_is_checked() -> None:
    assert len(MODULES) > 30
