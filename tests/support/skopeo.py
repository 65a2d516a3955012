"""Run skopeo (containers/image, the client library behind podman and CRI-O) in isolation.

Every call gets its own policy.json (accept anything), an empty auth file and a scratch
HOME / XDG_RUNTIME_DIR / TMPDIR, so neither the user's ~/.docker, ~/.config/containers nor
/etc/containers/policy.json affects a test. registries.conf is passed with skopeo's
hidden global flag `--registries-conf`; without it an empty one is used. (The drop-in
directory /etc/containers/registries.conf.d is still read: skopeo 1.9 has no flag to
move it.)
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, overload

from tests.support.binaries import require_binary

DEFAULT_TIMEOUT = 300.0


class SkopeoError(RuntimeError):
    """skopeo exited non-zero; `stderr` holds what it said."""

    def __init__(self, args: Sequence[str], returncode: int, stderr: str) -> None:
        super().__init__(f"skopeo exited {returncode}: {' '.join(args)}\n{stderr.strip()}")
        self.args_used = list(args)
        self.returncode = returncode
        self.stderr = stderr


def registries_conf(
    path: Path,
    *,
    prefix: str,
    mirror_location: str,
    location: str | None = None,
    insecure: bool = True,
    mirror_insecure: bool = True,
) -> Path:
    """Write a registries.conf routing pulls of `prefix` through one mirror.

    `prefix` is what image names start with (e.g. `example.test` or `docker.io/library`);
    `location` is where the registry really is (defaults to `prefix`); `mirror_location`
    is `host:port[/path]` of the mirror, tried before `location`.
    """
    lines = [
        "unqualified-search-registries = []",
        'short-name-mode = "disabled"',
        "",
        "[[registry]]",
        f"prefix = {json.dumps(prefix)}",
        f"location = {json.dumps(location or prefix)}",
        f"insecure = {str(insecure).lower()}",
        "",
        "[[registry.mirror]]",
        f"location = {json.dumps(mirror_location)}",
        f"insecure = {str(mirror_insecure).lower()}",
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _is_docker(ref: str) -> bool:
    return ref.startswith("docker://")


def run(
    command: str,
    args: Sequence[str],
    *,
    auth_options: Sequence[str] = ("--authfile",),
    registries_conf: Path | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    debug: bool = False,
) -> subprocess.CompletedProcess[bytes]:
    """Run `skopeo [global flags] COMMAND [auth flags] ARGS` isolated from the host's config.

    Each of `auth_options` is given the path of an empty auth file. Raises SkopeoError on
    a non-zero exit. Output is returned as bytes so raw manifests keep their exact digest.
    """
    binary = require_binary("skopeo")
    with tempfile.TemporaryDirectory(prefix="skopeo-") as scratch_dir:
        scratch = Path(scratch_dir)
        policy = scratch / "policy.json"
        policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
        conf = registries_conf
        if conf is None:
            conf = scratch / "registries.conf"
            conf.write_text("unqualified-search-registries = []\n")
        cmd = [
            binary,
            "--policy",
            str(policy),
            "--registries-conf",
            str(conf),
            "--registries.d",
            str(scratch),
            "--tmpdir",
            str(scratch),
            *(["--debug"] if debug else []),
            command,
        ]
        auth = scratch / "auth.json"
        auth.write_text(json.dumps({"auths": {}}))
        for option in auth_options:
            cmd += [option, str(auth)]
        cmd += args
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(scratch),
            "XDG_RUNTIME_DIR": str(scratch),
            "XDG_CONFIG_HOME": str(scratch / "config"),
            "TMPDIR": str(scratch),
        }
        proc = subprocess.run(
            cmd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    if proc.returncode != 0:
        raise SkopeoError(cmd, proc.returncode, proc.stderr.decode(errors="replace"))
    return proc


def copy(
    src: str,
    dst: str,
    *,
    registries_conf: Path | None = None,
    all_images: bool = False,
    format: Literal["oci", "v2s2"] | None = None,
    insecure: bool = True,
    extra_args: Sequence[str] = (),
    timeout: float = DEFAULT_TIMEOUT,
    debug: bool = False,
) -> subprocess.CompletedProcess[bytes]:
    """`skopeo copy SRC DST` with no retries and, unless `extra_args` give some (e.g.
    `--src-creds user:pass`), no credentials.

    `insecure` adds `--src/dest-tls-verify=false` for `docker://` refs (plain HTTP to
    loopback); pass False to let registries.conf's `insecure` decide. `all_images` copies
    every instance of an index (`--all`).
    """
    flags = ["--retry-times", "0", "--quiet"]
    if insecure and _is_docker(src):
        flags.append("--src-tls-verify=false")
    if insecure and _is_docker(dst):
        flags.append("--dest-tls-verify=false")
    if all_images:
        flags.append("--all")
    if format is not None:
        flags += ["--format", format]
    return run(
        "copy",
        [*flags, *extra_args, src, dst],
        auth_options=("--src-authfile", "--dest-authfile"),
        registries_conf=registries_conf,
        timeout=timeout,
        debug=debug,
    )


def _read_flags(ref: str, insecure: bool) -> list[str]:
    flags = ["--retry-times", "0"]
    if insecure and _is_docker(ref):
        flags.append("--tls-verify=false")
    return flags


@overload
def inspect(
    ref: str,
    *,
    raw: Literal[False] = False,
    registries_conf: Path | None = None,
    insecure: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
) -> dict[str, Any]: ...


@overload
def inspect(
    ref: str,
    *,
    raw: Literal[True],
    registries_conf: Path | None = None,
    insecure: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
) -> bytes: ...


def inspect(
    ref: str,
    *,
    raw: bool = False,
    registries_conf: Path | None = None,
    insecure: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
) -> dict[str, Any] | bytes:
    """`skopeo inspect`: the parsed summary, or with `raw=True` the exact manifest bytes.

    The summary is requested with `--no-tags` so it makes no tag-list request.
    """
    flags = [*_read_flags(ref, insecure), "--raw" if raw else "--no-tags"]
    proc = run("inspect", [*flags, ref], registries_conf=registries_conf, timeout=timeout)
    if raw:
        return proc.stdout
    summary: dict[str, Any] = json.loads(proc.stdout)
    return summary


def list_tags(
    ref: str,
    *,
    registries_conf: Path | None = None,
    insecure: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[str]:
    """`skopeo list-tags docker://HOST/REPO`: the repository's tags as the registry lists them."""
    flags = _read_flags(ref, insecure)
    proc = run("list-tags", [*flags, ref], registries_conf=registries_conf, timeout=timeout)
    tags: list[str] = json.loads(proc.stdout)["Tags"]
    return tags
