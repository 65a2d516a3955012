"""`mirror copy` starts as a client, not as a server: a real registry-to-registry copy
(`python -m mirror copy`, against a running standalone mirror) imports none of the
server stack, and a registry copy imports no layout (tarfile) code either.

Every module a process imports costs its start-up, which is most of a small copy's
time (bench workload 17)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.images import build_image
from tests.support.mirrorproc import MirrorProcess, run_mirror

# Third-party packages of the server side, and mirror's own server-side packages.
SERVER_STACK = (
    "starlette",
    "uvicorn",
    "granian",
    "redis",
    "jinja2",
    "prometheus_client",
    "yaml",
    "rich",
    "mirror.config",
    "mirror.proxy",
    "mirror.store",
    "mirror.server",
    "mirror.cache",
    "mirror.ui",
    "mirror.archive.export",
    "mirror.archive.importer",
)
# What only a copy from or to an OCI layout needs.
LAYOUT_ONLY = ("tarfile", "mirror.archive.format", "mirror.client.layout")

# Runs the CLI as `python -m mirror` does, or as the installed `mirror` script does
# (which imports `main`), and writes the imported modules at exit.
RUN_AND_LIST = """
import atexit, json, runpy, sys
how, out = sys.argv.pop(1), sys.argv.pop(1)
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
sys.argv[0] = "mirror"
if how == "module":
    runpy.run_module("mirror", run_name="__main__", alter_sys=True)
else:
    from mirror.__main__ import main
    sys.exit(main())
"""
INVOCATIONS = ("module", "script")


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MirrorProcess]:
    tmp = tmp_path_factory.mktemp("client-startup")
    with run_mirror(tmp, name="registry") as process:
        yield process


@pytest.fixture(params=INVOCATIONS)
def how(request: pytest.FixtureRequest) -> str:
    invocation: str = request.param
    return invocation


def imported_by(tmp_path: Path, how: str, *args: str) -> set[str]:
    listing = tmp_path / f"modules-{len(list(tmp_path.iterdir()))}.json"
    done = subprocess.run(
        [sys.executable, "-c", RUN_AND_LIST, how, str(listing), *args],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(listing.read_text()))


def under(modules: set[str], packages: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in packages))


def test_registry_copy_imports_no_server_and_no_layout(
    mirror: MirrorProcess, tmp_path: Path, how: str
) -> None:
    image = build_image(tmp_path / "layout", layers=(3000, 2_000_000), seed="startup")
    source = f"docker://{mirror.host}/startup/source:v1"
    seeded = imported_by(
        tmp_path, how, "copy", "--insecure", "-q", f"oci:{image.layout}:latest", source
    )
    # The layout side does import the layout code (the check below can tell).
    assert under(seeded, LAYOUT_ONLY) == sorted(LAYOUT_ONLY)
    assert under(seeded, SERVER_STACK) == []

    copied = imported_by(
        tmp_path, how, "copy", "--insecure", "-q", source, f"docker://{mirror.host}/startup/copy:v1"
    )
    assert "mirror.client.copy" in copied
    assert under(copied, SERVER_STACK) == []
    assert under(copied, LAYOUT_ONLY) == []


def test_every_client_verb_imports_no_server(
    mirror: MirrorProcess, tmp_path: Path, how: str
) -> None:
    image = build_image(tmp_path / "layout", layers=(1000,), seed="verbs")
    ref = f"{mirror.host}/startup/verbs:v1"
    imported_by(
        tmp_path, how, "copy", "--insecure", "-q", f"oci:{image.layout}:latest", f"docker://{ref}"
    )
    for verb in (
        ("ls", f"{mirror.host}/startup/verbs"),
        ("digest", ref),
        ("inspect", ref),
        ("catalog", mirror.host),
    ):
        modules = imported_by(tmp_path, how, *verb, "--insecure")
        assert under(modules, SERVER_STACK) == [], verb
    # The server side's commands do bring it along (the check above can tell).
    server_side = imported_by(tmp_path, how, "check-config")
    assert {"yaml", "mirror.config", "mirror.commands.servercli"} <= server_side
