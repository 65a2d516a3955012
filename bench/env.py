"""The servers and images of one run, each started or built the first time it is needed.

Topology (all on 127.0.0.1, filesystem storage under one temporary directory):

- upstream: a standalone docker-registry, seeded with skopeo; the one remote of both
  pull-through caches, so they fetch the same bytes from the same server;
- proxy("mirror") / proxy("reference"): `mirror serve` (its default server, granian,
  one worker) and docker-registry in proxy mode against that upstream;
- standalone("mirror") / standalone("reference"): the same two without a proxy section,
  for pushes and for seeding thousands of tags and repositories.

The reference always runs with `storage.cache.blobdescriptor: inmemory` and its access
log on; mirror runs with its defaults (access log on as well).
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar
from urllib.parse import urlsplit

from bench.results import Samples
from bench.settings import Scale
from tests.support import skopeo
from tests.support.distribution import run_reference_registry
from tests.support.images import BuiltImage, build_image
from tests.support.mirrorproc import run_mirror

T = TypeVar("T")
Side = Literal["mirror", "reference"]
SIDES: tuple[Side, ...] = ("mirror", "reference")
MIRROR_SERVER = "granian"  # mirror's default http.server
MIRROR_WORKERS = 1  # mirror's default http.workers


@dataclass(frozen=True, slots=True)
class Server:
    """A running registry server of the benchmark."""

    side: str
    url: str
    config_path: Path
    log_path: Path

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc

    def ref(self, repository: str, tag: str = "latest") -> str:
        """skopeo's `docker://` reference to `repository:tag` on this server."""
        return f"docker://{self.host}/{repository}:{tag}"


class Env:
    """Lazily started servers and lazily built images; everything ends with the stack."""

    def __init__(
        self, scale: Scale, workdir: Path, stack: ExitStack, *, server: str = MIRROR_SERVER
    ) -> None:
        self.scale = scale
        self.server = server
        self.workdir = workdir
        self._stack = stack
        self._servers: dict[str, Server] = {}
        self._images: dict[str, BuiltImage] = {}
        self._seeded: set[str] = set()
        self._scratch = itertools.count()
        self._done: set[str] = set()
        self.notes: list[str] = []
        self.peaks: dict[int, Samples] = {}  # peak RSS (MiB) sampled during a workload

    def once(self, key: str, action: Callable[[], object]) -> None:
        """Run `action` unless an earlier call with `key` completed (one-off warm-ups)."""
        if key not in self._done:
            action()
            self._done.add(key)

    def enter(self, context: AbstractContextManager[T]) -> T:
        """Keep `context` (a server) open until the run ends."""
        return self._stack.enter_context(context)

    def note(self, text: str) -> None:
        """Keep a line of detail (raw samples, counts) for the report."""
        self.notes.append(text)

    @property
    def upstream(self) -> Server:
        if "upstream" not in self._servers:
            proc = self._stack.enter_context(run_reference_registry(self.workdir / "upstream"))
            self._servers["upstream"] = Server(
                "upstream", proc.url, proc.config_path, proc.log_path
            )
        return self._servers["upstream"]

    def proxy(self, side: Side) -> Server:
        """The pull-through cache of `side`, in front of the shared upstream."""
        key = f"proxy-{side}"
        if key not in self._servers:
            upstream = self.upstream.url
            self._servers[key] = self._start(side, key, upstream)
        return self._servers[key]

    def standalone(self, side: Side) -> Server:
        key = f"standalone-{side}"
        if key not in self._servers:
            self._servers[key] = self._start(side, key, None)
        return self._servers[key]

    def _start(self, side: Side, key: str, remote: str | None) -> Server:
        if side == "reference":
            ref = self._stack.enter_context(
                run_reference_registry(self.workdir / key, proxy_remoteurl=remote)
            )
            return Server(side, ref.url, ref.config_path, ref.log_path)
        proxy = None if remote is None else {"remoteurl": remote}
        mirror = self._stack.enter_context(
            run_mirror(
                self.workdir,
                name=key,
                server=self.server,
                workers=MIRROR_WORKERS,
                proxy=proxy,
            )
        )
        return Server(side, mirror.url, mirror.config_path, mirror.log_path)

    def image(self, key: str, layers: Sequence[int]) -> BuiltImage:
        """An OCI image with random layers of the given sizes, built once per key."""
        if key not in self._images:
            self._images[key] = build_image(
                self.workdir / "images" / key, layers=list(layers), seed=key
            )
        return self._images[key]

    def seeded(self, key: str, layers: Sequence[int]) -> tuple[BuiltImage, str]:
        """`image(key, layers)` pushed to the upstream as `bench/<key>:latest`.

        Returns the image and its repository name.
        """
        image = self.image(key, layers)
        repository = f"bench/{key}"
        if key not in self._seeded:
            skopeo.copy(
                image.source_ref,
                self.upstream.ref(repository),
                timeout=self.scale.timeout,
            )
            self._seeded.add(key)
        return image, repository

    @contextmanager
    def scratch(self) -> Iterator[Path]:
        """A fresh directory (for a pull's target), removed afterwards."""
        path = self.workdir / "scratch" / str(next(self._scratch))
        path.mkdir(parents=True)
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)


def alternate(rounds: int, measure: Callable[[Side, int], None]) -> None:
    """Call `measure(side, round)` for both sides, round after round.

    The side that goes first swaps every round, and dirty pages are written out before
    each measurement: whoever comes right after seeding or after the other side's big
    writes would otherwise pay for that disk traffic.
    """
    for round_number in range(rounds):
        order = SIDES if round_number % 2 == 0 else tuple(reversed(SIDES))
        for side in order:
            os.sync()
            measure(side, round_number)
