"""Workload 15: both registries on S3 (moto's server on loopback, one bucket each).

- push of the 5-layer image (standalone on S3);
- cold pull-through of the 5-layer image (pull-through caches on S3);
- `clients` concurrent cold pulls of the big-layer image, dealt over two replicas of each
  side sharing one bucket (mirror's replicas also share the Redis at 127.0.0.1:6379 when
  it answers, and each streams the other's downloads from its advertised URL, `cluster`;
  the reference has nothing to share): upstream bytes / image size, wall time;
- warm GET of a stored blob with redirects (the client follows the 307 to the bucket) and
  without (`storage.redirect.disable: true`, bytes through the registry).

The emulator is the same for both sides, so the ratios compare the registries, not S3.
"""

from __future__ import annotations

import shutil
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import redis

from bench.env import Env, Server, Side, alternate
from bench.pulls import five_title, timed_pull
from bench.results import Row, Samples, at_most, exactly
from bench.settings import human_size
from bench.upstreamlog import upstream_window
from tests.support import skopeo
from tests.support.distribution import run_reference_registry
from tests.support.mirrorproc import run_mirror
from tests.support.processes import free_port, running

NUMBER = 15
KEY, SECRET = "bench", "bench"
CLUSTER_SECRET = uuid.uuid4().hex
# The emulator is plain HTTP: no CA bundle concerns its clients (the Go SDK refuses to
# start with one it cannot use; an empty value counts as unset).
PLAIN = {"AWS_CA_BUNDLE": "", "SSL_CERT_FILE": "", "REQUESTS_CA_BUNDLE": "", "CURL_CA_BUNDLE": ""}


class Emulator:
    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    def bucket(self) -> dict[str, Any]:
        """A new bucket's registry:2 `s3` parameters (the same keys for both sides)."""
        name = f"bench-{uuid.uuid4().hex[:16]}"
        httpx.put(f"{self.endpoint}/{name}", trust_env=False, timeout=30).raise_for_status()
        return {
            "region": "us-east-1",
            "bucket": name,
            "regionendpoint": self.endpoint,
            "forcepathstyle": True,
            "accesskey": KEY,
            "secretkey": SECRET,
            "secure": False,
            "rootdirectory": "/registry",
        }


@contextmanager
def moto(workdir: Path) -> Iterator[Emulator]:
    beside = Path(sys.executable).parent / "moto_server"
    binary = str(beside) if beside.exists() else shutil.which("moto_server")
    if binary is None:
        raise RuntimeError("moto_server not found (pip install 'moto[server]')")
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with running(
        [binary, "-H", "127.0.0.1", "-p", str(port)],
        log_path=workdir / "moto.log",
        ready_url=f"{endpoint}/",
        start_timeout=30,
    ):
        yield Emulator(endpoint)


def _redis() -> dict[str, Any] | None:
    client = redis.Redis(host="127.0.0.1", port=6379, socket_timeout=1.0)
    try:
        client.ping()
    except redis.RedisError:
        return None
    finally:
        client.close()
    return {"addr": "127.0.0.1:6379", "db": 0}


class ObjectServers:
    """Registries of both sides on buckets of one emulator, started as needed."""

    def __init__(self, env: Env, emulator: Emulator, stack: ExitStack) -> None:
        self.env = env
        self.emulator = emulator
        self.stack = stack
        self.count = 0

    def start(
        self,
        side: Side,
        s3: dict[str, Any],
        *,
        remote: str | None = None,
        redirect: bool = True,
        shared: dict[str, Any] | None = None,
    ) -> Server:
        self.count += 1
        name = f"objstore-{side}-{self.count}"
        storage: dict[str, Any] = {"s3": s3, "redirect": {"disable": not redirect}}
        if side == "reference":
            ref = self.stack.enter_context(
                run_reference_registry(
                    self.env.workdir / name, proxy_remoteurl=remote, storage=storage, env=PLAIN
                )
            )
            return Server(side, ref.url, ref.config_path, ref.log_path)
        mirror = self.stack.enter_context(
            run_mirror(
                self.env.workdir,
                name=name,
                server=self.env.server,
                proxy=None if remote is None else {"remoteurl": remote},
                storage=storage,
                env=PLAIN,
                **(shared or {}),
            )
        )
        return Server(side, mirror.url, mirror.config_path, mirror.log_path)


def object_storage(env: Env) -> list[Row]:
    with ExitStack() as stack:
        emulator = stack.enter_context(moto(env.workdir))
        servers = ObjectServers(env, emulator, stack)
        return [
            *_push(env, servers),
            *_cold_pull(env, servers),
            *_crowd(env, servers),
            *_warm_get(env, servers),
        ]


def _push(env: Env, servers: ObjectServers) -> list[Row]:
    targets = {
        side: servers.start(side, servers.emulator.bucket()) for side in ("mirror", "reference")
    }
    samples = Samples()

    def measure(side: Side, round_number: int) -> None:
        image = env.image(f"five-{round_number}", env.scale.five_layers)
        started = time.perf_counter()
        skopeo.copy(
            image.source_ref,
            targets[side].ref(f"push/five-{round_number}"),
            timeout=env.scale.timeout,
        )
        samples.add(side, time.perf_counter() - started)

    alternate(env.scale.rounds, measure)
    env.note(f"15 push on s3 s: {samples.describe()}")
    title = f"push of the {five_title(env)} (standalone, on S3)"
    return [Row(NUMBER, title, "time (s)", *samples.medians(), at_most(1.0))]


def _cold_pull(env: Env, servers: ObjectServers) -> list[Row]:
    caches = {
        side: servers.start(side, servers.emulator.bucket(), remote=env.upstream.url)
        for side in ("mirror", "reference")
    }
    samples = Samples()

    def measure(side: Side, round_number: int) -> None:
        _, repository = env.seeded(f"s3-five-{round_number}", env.scale.five_layers)
        samples.add(side, timed_pull(env, caches[side], repository))

    alternate(env.scale.rounds, measure)
    env.note(f"15 cold pull on s3 s: {samples.describe()}")
    title = f"cold pull-through of a {five_title(env)} (on S3)"
    return [Row(NUMBER, title, "time (s)", *samples.medians(), at_most(1.0))]


def _replica(shared: dict[str, Any] | None) -> dict[str, Any]:
    """The options of one of mirror's replicas: the Redis they share, and its advertised
    URL, from which the other streams the downloads it holds (`cluster`)."""
    port = free_port()
    cluster = {"advertise": f"http://127.0.0.1:{port}", "secret": CLUSTER_SECRET}
    return {"port": port, "extra": {"cluster": cluster}, **({"redis": shared} if shared else {})}


def _crowd(env: Env, servers: ObjectServers) -> list[Row]:
    shared = _redis()
    replicas: dict[Side, list[Server]] = {}
    for side in ("mirror", "reference"):
        s3 = servers.emulator.bucket()
        replicas[side] = [
            servers.start(
                side,
                s3,
                remote=env.upstream.url,
                shared=_replica(shared) if side == "mirror" else None,
            )
            for _ in range(2)
        ]
    if shared is None:
        env.note("15: no Redis at 127.0.0.1:6379; mirror's two replicas share only the bucket")
    clients, size = env.scale.clients, env.scale.blob_size
    wall, fetched = Samples(), Samples()

    def measure(side: Side, round_number: int) -> None:
        # An image per side and round, so the upstream's log for it is this side's alone
        # (registry:2 proxies may go on fetching after their clients are done).
        image, repository = env.seeded(f"s3-crowd-{side}-{round_number}", [size])
        with upstream_window(env.upstream.log_path, image) as window:
            started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=clients) as pool:
                pulls = [
                    pool.submit(timed_pull, env, replicas[side][n % 2], repository)
                    for n in range(clients)
                ]
                for pull in pulls:
                    pull.result()
            wall.add(side, time.perf_counter() - started)
        fetched.add(side, window.ratio)
        env.note(f"15 {side} crowd round {round_number + 1}: {window.describe()}")

    alternate(env.scale.rounds, measure)
    env.note(f"15 crowd wall s: {wall.describe()}")
    title = f"{clients} pulls of an uncached {human_size(size)}-layer image, 2 replicas on S3"
    return [
        Row(NUMBER, title, "bytes from upstream / image size", *fetched.medians(), exactly(1.0)),
        Row(NUMBER, title, "wall time (s)", *wall.medians(), at_most(1.0)),
    ]


def _warm_get(env: Env, servers: ObjectServers) -> list[Row]:
    rows = []
    size = env.scale.blob_size
    image = env.image("s3-warm", [size])
    layer, size = image.layers[0].digest, image.layers[0].size
    for redirect in (True, False):
        targets: dict[Side, Server] = {
            side: servers.start(side, servers.emulator.bucket(), redirect=redirect)
            for side in ("mirror", "reference")
        }
        for server in targets.values():
            skopeo.copy(image.source_ref, server.ref("warm/blob"), timeout=env.scale.timeout)
        samples = Samples()

        def measure(
            side: Side,
            _round: int,
            targets: dict[Side, Server] = targets,
            samples: Samples = samples,
        ) -> None:
            url = f"{targets[side].url}/v2/warm/blob/blobs/{layer}"
            started = time.perf_counter()
            with (
                httpx.Client(trust_env=False, timeout=env.scale.timeout) as client,
                client.stream("GET", url, follow_redirects=True) as response,
            ):
                response.raise_for_status()
                received = sum(len(chunk) for chunk in response.iter_bytes(1 << 20))
            assert received == size, (side, received)
            samples.add(side, time.perf_counter() - started)

        alternate(env.scale.rounds, measure)
        how = "with redirect (307 to S3)" if redirect else "without redirect"
        env.note(f"15 warm blob GET {how} s: {samples.describe()}")
        title = f"warm GET of a stored {human_size(size)} blob on S3, {how}"
        rows.append(Row(NUMBER, title, "time (s)", *samples.medians(), at_most(1.0)))
    return rows
