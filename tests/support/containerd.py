"""Run a private containerd (1.6) and pull images into it with `ctr` through hosts.toml.

containerd runs as root with its root, state, gRPC and ttrpc sockets in a temporary
directory and everything it does not need for pulls switched off (CRI, tasks, runtimes,
the snapshotters other than `native`), so it starts in well under a second and never
touches /var/lib/containerd or /run/containerd.

`ctr image pull` does the registry work itself (in 1.6 the daemon only stores content),
reading the registry host configuration from `--hosts-dir`: `DIR/<registry host>/hosts.toml`.
To every host other than the reference's own registry (mirrors, and a `server` that is
not that registry) containerd adds `?ns=<registry host>`, percent-encoded, to each
request; it sends no `/v2/` ping first.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.binaries import require_binary, require_root
from tests.support.processes import running

NAMESPACE = "test"
DEFAULT_TIMEOUT = 300.0

# Plugins a pull never needs; disabling them keeps startup fast and side-effect free
# (no cgroup monitor, no shim restarts, no overlay or devmapper probing).
DISABLED_PLUGINS = (
    "io.containerd.grpc.v1.cri",
    "io.containerd.snapshotter.v1.aufs",
    "io.containerd.snapshotter.v1.btrfs",
    "io.containerd.snapshotter.v1.devmapper",
    "io.containerd.snapshotter.v1.zfs",
    "io.containerd.snapshotter.v1.overlayfs",
    "io.containerd.runtime.v1.linux",
    "io.containerd.runtime.v2.task",
    "io.containerd.monitor.v1.cgroups",
    "io.containerd.service.v1.tasks-service",
    "io.containerd.grpc.v1.tasks",
    "io.containerd.internal.v1.restart",
    "io.containerd.tracing.processor.v1.otlp",
    "io.containerd.internal.v1.tracing",
)


class CtrError(RuntimeError):
    """`ctr` exited non-zero; `output` holds what it printed."""

    def __init__(self, args: Sequence[str], returncode: int, output: str) -> None:
        super().__init__(f"ctr exited {returncode}: {' '.join(args)}\n{output.strip()}")
        self.returncode = returncode
        self.output = output


def write_hosts_toml(
    hosts_dir: Path,
    registry_host: str,
    mirror_url: str,
    *,
    override_path: bool = False,
    capabilities: Sequence[str] = ("pull", "resolve"),
    server: str | None = None,
) -> Path:
    """Write `hosts_dir/<registry_host>/hosts.toml` sending pulls of `registry_host` to a mirror.

    `mirror_url` is `http://127.0.0.1:PORT` (containerd appends `/v2`), or with
    `override_path=True` the full API root including `/v2`, used as is. `server`, when
    given, replaces the registry's default upstream (containerd falls back to it when
    every host fails; for docker.io that default is https://registry-1.docker.io).
    """
    directory = hosts_dir / registry_host
    directory.mkdir(parents=True, exist_ok=True)
    lines = []
    if server is not None:
        lines += [f"server = {json.dumps(server)}", ""]
    lines += [
        f"[host.{json.dumps(mirror_url)}]",
        f"  capabilities = {json.dumps(list(capabilities))}",
    ]
    if override_path:
        lines.append("  override_path = true")
    path = directory / "hosts.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def write_config(path: Path, *, root: Path, state: Path, socket: Path) -> Path:
    """Write a containerd config (version 2) confined to the given directories."""
    disabled = ", ".join(json.dumps(name) for name in DISABLED_PLUGINS)
    path.write_text(
        "\n".join(
            [
                "version = 2",
                f"root = {json.dumps(str(root))}",
                f"state = {json.dumps(str(state))}",
                f"disabled_plugins = [{disabled}]",
                "",
                "[grpc]",
                f"  address = {json.dumps(str(socket))}",
                "",
                "[ttrpc]",
                f"  address = {json.dumps(str(socket) + '.ttrpc')}",
                "",
                '[plugins."io.containerd.internal.v1.opt"]',
                f"  path = {json.dumps(str(root / 'opt'))}",
                "",
            ]
        )
    )
    return path


@dataclass(frozen=True, slots=True)
class Containerd:
    """A running private containerd and the `ctr` commands tests need."""

    address: Path
    root: Path
    log_path: Path
    ctr_binary: str
    namespace: str = NAMESPACE

    def ctr(self, *args: str, timeout: float = DEFAULT_TIMEOUT) -> str:
        """Run `ctr --address SOCK --namespace NS ARGS`; return its combined output."""
        cmd = [self.ctr_binary, "--address", str(self.address), "--namespace", self.namespace]
        cmd += args
        proc = subprocess.run(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            check=False,
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(self.root)},
        )
        output = proc.stdout.decode(errors="replace")
        if proc.returncode != 0:
            raise CtrError(cmd, proc.returncode, output)
        return output

    def pull(
        self,
        ref: str,
        *,
        hosts_dir: Path,
        platform: str | None = None,
        all_platforms: bool = False,
        plain_http: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> str:
        """`ctr image pull` of `ref` (e.g. `docker.io/library/alpine:1`) via `hosts_dir`.

        Unpacks into the `native` snapshotter. `platform` is `os/arch[/variant]`; the
        default is the host's. `plain_http` only matters for a registry's default server:
        hosts.toml entries carry their own scheme.
        """
        args = ["image", "pull", "--snapshotter", "native", "--hosts-dir", str(hosts_dir)]
        if platform is not None:
            args += ["--platform", platform]
        if all_platforms:
            args.append("--all-platforms")
        if plain_http:
            args.append("--plain-http")
        return self.ctr(*args, ref, timeout=timeout)

    def image_names(self) -> list[str]:
        """Names of the images this containerd knows in the test namespace."""
        return self.ctr("image", "list", "--quiet").split()

    def content_digests(self) -> set[str]:
        """Digests of every blob in the content store (manifests, configs, layers)."""
        rows = self.ctr("content", "list", "--quiet").split()
        return set(rows)

    def remove_image(self, ref: str) -> None:
        """Forget image `ref` (its content is garbage collected once unreferenced)."""
        self.ctr("image", "remove", "--sync", ref)


@contextmanager
def run_containerd(tmpdir: Path, *, start_timeout: float = 20.0) -> Iterator[Containerd]:
    """Run a private containerd for the with-block (root needed; skips/fails otherwise).

    Sockets live in a short directory under /tmp, because a Unix socket path must fit in
    108 bytes and pytest's tmp_path often does not; it is removed afterwards.
    """
    require_root("containerd")
    binary = require_binary("containerd")
    ctr_binary = require_binary("ctr")
    tmpdir.mkdir(parents=True, exist_ok=True)
    root = tmpdir / "root"
    state_and_sockets = Path(tempfile.mkdtemp(prefix="ctrd-", dir="/tmp"))
    socket = state_and_sockets / "c.sock"
    config = write_config(
        tmpdir / "config.toml", root=root, state=state_and_sockets / "state", socket=socket
    )
    log_path = tmpdir / "containerd.log"
    try:
        with running(
            [binary, "--config", str(config), "--log-level", "info"],
            log_path=log_path,
            ready=socket.is_socket,
            start_timeout=start_timeout,
        ):
            daemon = Containerd(socket, root, log_path, ctr_binary)
            # The socket appears before every service is registered; one round trip
            # through ctr proves the daemon answers requests.
            daemon.ctr("version", timeout=start_timeout)
            yield daemon
    finally:
        shutil.rmtree(state_and_sockets, ignore_errors=True)
