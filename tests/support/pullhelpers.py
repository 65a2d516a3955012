"""Helpers for end-to-end pull-through tests against real upstream registry processes.

- `proxy_settings` builds the `proxy:` block of a mirror whose upstreams are local
  `docker-registry` processes;
- `UpstreamControl` runs one such registry that a test can stop and start again on the
  same port and storage (an upstream outage and its recovery);
- `push_blob` uploads a file as a bare blob (the quickest way to put 100 MB upstream);
- `fetch_blob` / `fetch_all` stream blobs over HTTP and hash them without keeping them,
  `fetch_all` from many threads released at the same instant;
- `requests_since` reads the upstream access log from a mark on; `scrape_metrics` reads
  a mirror's counters.

Everything is synchronous: the servers under test are separate processes.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.distribution import (
    AccessLogEntry,
    RegistryProcess,
    access_log,
    run_reference_registry,
    settle_log,
)
from tests.support.images import BlobFile, sha256_file

MiB = 1 << 20
HTTP_TIMEOUT = httpx.Timeout(60.0, connect=5.0)
_CHUNK = MiB

# What a Docker daemon (moby 24, registry-mirrors) sends: its own User-Agent and every
# manifest type it can read, schema 1 included.
DOCKER_USER_AGENT = (
    "docker/24.0.7 go/go1.20.10 git-commit/311b9ff kernel/6.1.0 os/linux arch/amd64 "
    "UpstreamClient(Docker-Client/24.0.7 \\(linux\\))"
)
DOCKER_ACCEPT = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "application/json",
)


def proxy_settings(
    default_url: str,
    *,
    name: str = "docker.io",
    upstreams: Mapping[str, str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A `proxy:` block: `default_url` serves plain names and `?ns=<name>`; each
    `upstreams` entry maps a registry name (the `ns` value) to its URL. `extra` adds
    keys such as `freshness="1s"` or `breaker={...}`.
    """
    block: dict[str, Any] = {"remoteurl": default_url, "name": name}
    if upstreams:
        block["upstreams"] = [{"name": key, "remoteurl": url} for key, url in upstreams.items()]
    block.update(extra)
    return block


def layout_blobs(layout: Path) -> dict[str, str]:
    """Every blob file of an OCI layout: claimed digest (its name) -> actual digest."""
    directory = layout / "blobs" / "sha256"
    return {f"sha256:{path.name}": sha256_file(path) for path in sorted(directory.iterdir())}


def push_blob(registry_url: str, repository: str, blob: BlobFile) -> None:
    """Upload `blob`'s file to `repository` in one monolithic PUT, streamed from disk."""

    def body() -> Iterator[bytes]:
        with blob.path.open("rb") as f:
            while chunk := f.read(_CHUNK):
                yield chunk

    with httpx.Client(base_url=registry_url, timeout=HTTP_TIMEOUT, trust_env=False) as client:
        started = client.post(f"/v2/{repository}/blobs/uploads/")
        assert started.status_code == 202, started.text
        location = started.headers["Location"]
        sep = "&" if "?" in location else "?"
        done = client.put(
            f"{location}{sep}digest={blob.digest}",
            content=body(),
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(blob.size)},
        )
        assert done.status_code == 201, done.text


@dataclass(frozen=True, slots=True)
class FetchedBlob:
    """What one streamed GET returned: status, headers, the digest and size of the body,
    and when (time.monotonic) the request was sent and the body had fully arrived.
    """

    status: int
    headers: Mapping[str, str]
    digest: str
    size: int
    sent: float
    finished: float


def fetch_blob(
    url: str, *, headers: Mapping[str, str] | None = None, client: httpx.Client | None = None
) -> FetchedBlob:
    """GET `url`, hashing the body as it streams in (nothing is kept in memory)."""
    with ExitStack() as stack:
        if client is None:
            client = stack.enter_context(httpx.Client(timeout=HTTP_TIMEOUT, trust_env=False))
        sent = time.monotonic()
        with client.stream("GET", url, headers=headers) as response:
            hasher = hashlib.sha256()
            size = 0
            for chunk in response.iter_bytes(_CHUNK):
                hasher.update(chunk)
                size += len(chunk)
            return FetchedBlob(
                response.status_code,
                dict(response.headers),
                f"sha256:{hasher.hexdigest()}",
                size,
                sent,
                time.monotonic(),
            )


def fetch_all(urls: Sequence[str], *, timeout: float = 120.0) -> list[FetchedBlob]:
    """Fetch every URL from its own thread, all released at once by a barrier.

    Each thread connects first, so the requests leave together instead of in the order
    the threads happened to start. Raises the first failure; results are in `urls` order.
    """
    barrier = threading.Barrier(len(urls), timeout=timeout)

    def one(url: str) -> FetchedBlob:
        with httpx.Client(timeout=HTTP_TIMEOUT, trust_env=False) as client:
            base = httpx.URL(url).copy_with(path="/v2/", query=None)
            client.get(base)  # opens the pooled connection before the race
            barrier.wait()
            return fetch_blob(url, client=client)

    with ThreadPoolExecutor(max_workers=len(urls)) as pool:
        futures = [pool.submit(one, url) for url in urls]
        return [future.result(timeout=timeout) for future in futures]


def scrape_metrics(base_url: str) -> dict[str, float]:
    """A server's `/metrics` as `{'name{labels}': value}` (Prometheus text format)."""
    response = httpx.get(f"{base_url}/metrics", timeout=HTTP_TIMEOUT, trust_env=False)
    response.raise_for_status()
    samples: dict[str, float] = {}
    for line in response.text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            samples[key] = float(value)
    return samples


def log_mark(registry: RegistryProcess) -> int:
    """How many client requests the registry has logged so far (after letting it settle)."""
    settle_log(registry.log_path)
    return len(access_log(registry.log_path))


def requests_since(registry: RegistryProcess, mark: int) -> list[AccessLogEntry]:
    """The client requests the registry logged after `mark` (from `log_mark`)."""
    settle_log(registry.log_path)
    return access_log(registry.log_path)[mark:]


class UpstreamControl:
    """A `docker-registry` that can be stopped and started again on one port and storage.

    Use as a context manager; `stop()` ends the process (the access log stays), `start()`
    runs a new one where the last one was. `process` is the running registry.
    """

    def __init__(self, tmpdir: Path) -> None:
        self.tmpdir = tmpdir
        self._port: int | None = None
        self._stack: ExitStack | None = None
        self._last: RegistryProcess | None = None

    @property
    def process(self) -> RegistryProcess:
        if self._last is None:
            raise RuntimeError("the upstream was never started")
        return self._last

    def start(self) -> RegistryProcess:
        if self._stack is not None:
            raise RuntimeError("the upstream is already running")
        stack = ExitStack()
        try:
            process = stack.enter_context(run_reference_registry(self.tmpdir, port=self._port))
        except BaseException:
            stack.close()
            raise
        self._stack, self._last = stack, process
        self._port = int(process.host.rsplit(":", 1)[1])
        return process

    def stop(self) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            stack.close()

    def __enter__(self) -> RegistryProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
