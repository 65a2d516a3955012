"""Run CNCF Distribution (`docker-registry`, 2.8) on loopback and read its access log.

The registry writes one Apache "combined" access-log line per request to stdout, e.g.

    127.0.0.1 - - [28/Nov/2026:20:12:57 +0000] "GET /v2/foo/blobs/sha256:ab.. HTTP/1.1" 200 157 ""
    "skopeo/1.9.3"

(one line)

next to its logrus lines on stderr; both go to one log file. The line is written when
the response completes, which can be a moment after the client has read the last byte,
so call `settle_log` before counting requests a client has just made.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from tests.support.binaries import require_binary
from tests.support.processes import PROBE_USER_AGENT, ProcessStartError, free_port, running

_ACCESS_LINE = re.compile(
    r'^(?P<remote>\S+) \S+ \S+ \[(?P<time>[^\]]+)\] "(?P<method>[A-Z]+) (?P<uri>\S+) '
    r'(?P<protocol>[^"]+)" (?P<status>\d{3}) (?P<size>\d+) "(?P<referer>[^"]*)" '
    r'"(?P<user_agent>[^"]*)"$'
)
_BLOB_PATH = re.compile(r"^/v2/(?P<name>.+)/blobs/(?P<digest>[a-z0-9+._-]+:[a-zA-Z0-9=_-]+)$")
_BIND_RETRIES = 3


@dataclass(frozen=True, slots=True)
class RegistryProcess:
    """A running reference registry."""

    url: str
    root: Path
    log_path: Path
    config_path: Path

    @property
    def host(self) -> str:
        """`127.0.0.1:PORT`, the registry part of image references."""
        return urlsplit(self.url).netloc

    def ref(self, repository: str, reference: str = "latest") -> str:
        """A skopeo `docker://` reference to `repository` here (tag or digest)."""
        sep = "@" if ":" in reference else ":"
        return f"docker://{self.host}/{repository}{sep}{reference}"


@dataclass(frozen=True, slots=True)
class AccessLogEntry:
    """One request as the registry's access log recorded it."""

    method: str
    uri: str
    status: int
    size: int
    user_agent: str

    @property
    def path(self) -> str:
        return urlsplit(self.uri).path

    @property
    def query(self) -> str:
        return urlsplit(self.uri).query


def write_config(
    path: Path,
    *,
    root: Path,
    port: int,
    proxy_remoteurl: str | None = None,
    delete: bool = True,
    auth: Mapping[str, object] | None = None,
    storage: Mapping[str, object] | None = None,
) -> Path:
    """Write a docker-registry config.yml: filesystem storage under `root`, access log on.

    `auth` is the config's `auth` block as is (e.g. `{"token": {...}}`); `storage`
    replaces the filesystem driver (`{"s3": {...}, "redirect": {...}}`).
    """
    config: dict[str, object] = {
        "version": 0.1,
        "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": False}},
        "storage": {
            **(storage or {"filesystem": {"rootdirectory": str(root)}}),
            "cache": {"blobdescriptor": "inmemory"},
            "delete": {"enabled": delete},
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
        # A fixed secret silences the startup warning and keeps upload state valid.
        "http": {"addr": f"127.0.0.1:{port}", "secret": secrets.token_hex(16)},
    }
    if proxy_remoteurl is not None:
        config["proxy"] = {"remoteurl": proxy_remoteurl}
    if auth is not None:
        config["auth"] = dict(auth)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@contextmanager
def run_reference_registry(
    tmpdir: Path,
    *,
    port: int | None = None,
    proxy_remoteurl: str | None = None,
    delete: bool = True,
    auth: Mapping[str, object] | None = None,
    start_timeout: float = 15.0,
    storage: Mapping[str, object] | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[RegistryProcess]:
    """Run `docker-registry serve` on 127.0.0.1 with its storage, config and log in `tmpdir`.

    With `port=None` a free port is chosen, and another one if some other process takes
    it before the registry binds. `proxy_remoteurl` turns it into Distribution's
    pull-through cache of that upstream (which then refuses pushes). Skips/fails the test
    when the binary is missing; raises ProcessStartError (with the log) if it cannot start.
    """
    ports: Iterable[int] = (
        [port] if port is not None else (free_port() for _ in range(_BIND_RETRIES))
    )
    with serve_on_first_free_port(
        tmpdir,
        ports,
        proxy_remoteurl=proxy_remoteurl,
        delete=delete,
        auth=auth,
        start_timeout=start_timeout,
        storage=storage,
        env=env,
    ) as registry:
        yield registry


@contextmanager
def serve_on_first_free_port(
    tmpdir: Path,
    ports: Iterable[int],
    *,
    proxy_remoteurl: str | None = None,
    delete: bool = True,
    auth: Mapping[str, object] | None = None,
    start_timeout: float = 15.0,
    storage: Mapping[str, object] | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[RegistryProcess]:
    """Like `run_reference_registry`, trying `ports` in order while they are taken."""
    binary = require_binary("docker-registry")
    tmpdir.mkdir(parents=True, exist_ok=True)
    root = tmpdir / "storage"
    root.mkdir(exist_ok=True)
    config_path = tmpdir / "config.yml"
    log_path = tmpdir / "registry.log"
    with ExitStack() as stack:
        registry: RegistryProcess | None = None
        busy: ProcessStartError | None = None
        for port in ports:
            write_config(
                config_path,
                root=root,
                port=port,
                proxy_remoteurl=proxy_remoteurl,
                delete=delete,
                auth=auth,
                storage=storage,
            )
            offset = log_path.stat().st_size if log_path.exists() else 0
            url = f"http://127.0.0.1:{port}"
            try:
                stack.enter_context(
                    running(
                        [binary, "serve", str(config_path)],
                        log_path=log_path,
                        ready_url=f"{url}/v2/",
                        start_timeout=start_timeout,
                        env=env,
                    )
                )
            except ProcessStartError as exc:
                with log_path.open("rb") as log:
                    log.seek(offset)
                    if b"address already in use" not in log.read():
                        raise
                busy = exc
                continue
            registry = RegistryProcess(url, root, log_path, config_path)
            break
        if registry is None:
            raise busy or ValueError("no port to try")
        yield registry


def access_log(log_path: Path, *, include_probes: bool = False) -> list[AccessLogEntry]:
    """Every access-log line in the registry log, oldest first (other lines are ignored).

    The readiness probes of `run_reference_registry` are left out unless asked for.
    """
    entries: list[AccessLogEntry] = []
    for line in log_path.read_text(errors="replace").splitlines():
        match = _ACCESS_LINE.match(line)
        if match is None:
            continue
        if match["user_agent"] == PROBE_USER_AGENT and not include_probes:
            continue
        entries.append(
            AccessLogEntry(
                method=match["method"],
                uri=match["uri"],
                status=int(match["status"]),
                size=int(match["size"]),
                user_agent=match["user_agent"],
            )
        )
    return entries


def settle_log(log_path: Path, *, quiet: float = 0.2, timeout: float = 5.0) -> None:
    """Wait until the log has not grown for `quiet` seconds; TimeoutError after `timeout`."""
    deadline = time.monotonic() + timeout
    last_size = -1
    last_change = time.monotonic()
    while True:
        size = log_path.stat().st_size if log_path.exists() else 0
        now = time.monotonic()
        if size != last_size:
            last_size, last_change = size, now
        elif now - last_change >= quiet:
            return
        if now >= deadline:
            raise TimeoutError(f"{log_path} was still growing after {timeout}s")
        time.sleep(0.05)


def count_requests(
    log_path: Path, method: str, path_substring: str = "", *, status: int | None = None
) -> int:
    """Requests with `method` whose URI (path and query) contains `path_substring`."""
    return sum(
        1
        for entry in access_log(log_path)
        if entry.method == method
        and path_substring in entry.uri
        and (status is None or entry.status == status)
    )


def count_blob_gets(
    log_path: Path,
    digest: str | None = None,
    *,
    repository: str | None = None,
    status: int | None = None,
) -> int:
    """GET requests for blobs (any repository unless given; one digest unless None).

    Upload URLs (`/blobs/uploads/...`) are not blob fetches and never count.
    """
    count = 0
    for entry in access_log(log_path):
        match = _BLOB_PATH.match(entry.path)
        if entry.method != "GET" or match is None:
            continue
        if digest is not None and match["digest"] != digest:
            continue
        if repository is not None and match["name"] != repository:
            continue
        if status is not None and entry.status != status:
            continue
        count += 1
    return count
