"""Appends and commits of one upload session are ordered across processes (issue 8, High 2).

Two apps built from one configuration stand for two workers of one server (or two
servers on one storage root): each has its own memory, they share the disk. A PUT that
finishes a session on one of them must never commit while a PATCH of that session still
streams into it on the other; what is committed is exactly what was verified.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx
import pytest

from mirror.config import parse_config
from mirror.coordination.fallback_leases import FallbackCoordinator
from mirror.coordination.file_leases import FileCoordinator
from mirror.coordination.leases import Coordinator, LocalCoordinator
from mirror.coordination.redis_leases import RedisCoordinator
from mirror.metrics import MetricsRegistry
from mirror.proxy.app import build_app, create_app
from mirror.store.blobs import BlobStore
from mirror.store.drivers import create_driver
from mirror.store.repo_blobs import RepositoryBlobs
from mirror.store.sessions import UploadSessions, lease_key
from mirror.store.store import Store
from mirror.store.uploads import UploadStore
from mirror.store.view import LocalResolver
from tests.support.oci import digest_of, random_bytes
from tests.support.redis import delete_prefix, redis_client, unique_prefix

pytestmark = pytest.mark.anyio

MiB = 1024 * 1024
# More than the file system writer buffers, so it is in the upload file while the rest waits.
HEAD = random_bytes(2 * MiB + 17, 81)
TAIL = random_bytes(300_000, 82)


def config_text(root: Path) -> str:
    return f"""
version: 0.1
storage:
  filesystem: {{rootdirectory: {root}}}
http: {{addr: "127.0.0.1:5000"}}
"""


def client_of(app: object) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://registry.test")


def code(r: httpx.Response) -> str:
    return str(r.json()["errors"][0]["code"])


class StalledBody:
    """A PATCH body that sends HEAD, then waits for `go_on` before sending TAIL."""

    def __init__(self) -> None:
        self.head_sent = anyio.Event()
        self.go_on = anyio.Event()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield HEAD
        self.head_sent.set()
        with anyio.fail_after(30):
            await self.go_on.wait()
        yield TAIL


async def wait_for_size(client: httpx.AsyncClient, location: str, size: int) -> None:
    with anyio.fail_after(10):
        while True:
            r = await client.get(location)
            assert r.status_code == 204, r.text
            if r.headers["range"] == f"0-{size - 1}":
                return
            await anyio.sleep(0.01)


async def assert_blob_is_its_digest(client: httpx.AsyncClient, name: str, digest: str) -> bool:
    """True when the blob is stored (and then its bytes have its digest)."""
    r = await client.get(f"/v2/{name}/blobs/{digest}")
    if r.status_code == 404:
        return False
    assert r.status_code == 200, r.text
    assert digest_of(r.content) == digest, f"{digest} holds {len(r.content)} other bytes"
    return True


async def test_put_on_another_worker_waits_for_the_running_patch(tmp_path: Path) -> None:
    config = parse_config(config_text(tmp_path / "root"), {})
    one = client_of(create_app(config, MetricsRegistry()))
    two = client_of(create_app(config, MetricsRegistry()))
    async with one, two:
        r = await one.post("/v2/team/app/blobs/uploads/")
        location = r.headers["location"]
        body = StalledBody()
        results: dict[str, httpx.Response] = {}
        put_done = anyio.Event()

        async def patch() -> None:
            results["patch"] = await one.patch(location, content=body)

        async def put() -> None:
            results["put"] = await two.put(location, params={"digest": digest_of(HEAD)})
            put_done.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(patch)
            await body.head_sent.wait()
            await wait_for_size(two, location, len(HEAD))
            tg.start_soon(put)
            # Long enough for an unordered PUT to have committed; an ordered one waits.
            with anyio.move_on_after(1.0):
                await put_done.wait()
            body.go_on.set()
        assert results["patch"].status_code == 202, results["patch"].text
        assert results["patch"].headers["range"] == f"0-{len(HEAD) + len(TAIL) - 1}"
        # The PUT came after the whole PATCH: the session holds HEAD + TAIL, not HEAD.
        assert results["put"].status_code == 400, results["put"].text
        assert code(results["put"]) == "DIGEST_INVALID"
        for client in (one, two):
            assert not await assert_blob_is_its_digest(client, "team/app", digest_of(HEAD))
            assert (await client.get(location)).status_code == 404


def stores_on_one_root(
    root: Path, coordinators: tuple[Coordinator, Coordinator], *, upload_wait: float
) -> tuple[httpx.AsyncClient, httpx.AsyncClient]:
    """Clients of two stores on `root`, each with its coordinator."""
    clients = []
    for coordinator in coordinators:
        driver = create_driver("filesystem", {"rootdirectory": str(root)})
        store = Store(driver, coordinator=coordinator, upload_wait=upload_wait)
        clients.append(client_of(build_app(store, LocalResolver(store), metrics=MetricsRegistry())))
    return clients[0], clients[1]


async def test_put_behind_a_stalled_patch_gives_up_with_a_clear_error(tmp_path: Path) -> None:
    leases = FileCoordinator(tmp_path / "leases")
    one, two = stores_on_one_root(tmp_path / "root", (leases, leases), upload_wait=0.5)
    async with one, two:
        r = await one.post("/v2/a/blobs/uploads/")
        location = r.headers["location"]
        body = StalledBody()
        results: dict[str, httpx.Response] = {}

        async def patch() -> None:
            results["patch"] = await one.patch(location, content=body)

        async with anyio.create_task_group() as tg:
            tg.start_soon(patch)
            await body.head_sent.wait()
            with anyio.fail_after(10):
                busy = await two.put(location, params={"digest": digest_of(HEAD)})
                chunk = await two.patch(location, content=b"more")
            body.go_on.set()
        assert busy.status_code == 409, busy.text
        assert code(busy) == "BLOB_UPLOAD_INVALID"
        assert "another request" in busy.json()["errors"][0]["message"]
        assert chunk.status_code == 409
        assert results["patch"].status_code == 202
        # Once the PATCH is done, the session goes on as if nothing had happened.
        whole = HEAD + TAIL
        done = await two.put(location, params={"digest": digest_of(whole)})
        assert done.status_code == 201, done.text
        r = await one.get(f"/v2/a/blobs/{digest_of(whole)}")
        assert hashlib.sha256(r.content).hexdigest() == digest_of(whole).split(":")[1]
    await leases.aclose()


async def test_cancel_waits_for_a_running_patch_too(tmp_path: Path) -> None:
    leases = FileCoordinator(tmp_path / "leases")
    one, two = stores_on_one_root(tmp_path / "root", (leases, leases), upload_wait=0.3)
    async with one, two:
        r = await one.post("/v2/a/blobs/uploads/")
        location = r.headers["location"]
        body = StalledBody()
        results: dict[str, httpx.Response] = {}

        async def patch() -> None:
            results["patch"] = await one.patch(location, content=body)

        async with anyio.create_task_group() as tg:
            tg.start_soon(patch)
            await body.head_sent.wait()
            with anyio.fail_after(10):
                busy = await two.delete(location)
            body.go_on.set()
        assert busy.status_code == 409, busy.text
        assert results["patch"].status_code == 202
        assert (await two.delete(location)).status_code == 204
        assert (await one.get(location)).status_code == 404
    await leases.aclose()


async def test_without_shared_leases_a_late_chunk_still_never_reaches_a_blob(
    tmp_path: Path,
) -> None:
    """Two stores that do not share a coordinator stand for a lease that ran out (its
    holder stalled past the ttl): the commit is refused while the chunk is being
    written, and the published blob is always exactly what was verified."""
    apart = (LocalCoordinator(), LocalCoordinator())
    one, two = stores_on_one_root(tmp_path / "root", apart, upload_wait=0.2)
    async with one, two:
        r = await one.post("/v2/a/blobs/uploads/")
        location = r.headers["location"]
        body = StalledBody()
        results: dict[str, httpx.Response] = {}

        async def patch() -> None:
            results["patch"] = await one.patch(location, content=body)

        async with anyio.create_task_group() as tg:
            tg.start_soon(patch)
            await body.head_sent.wait()
            await wait_for_size(two, location, len(HEAD))
            with anyio.fail_after(10):
                refused = await two.put(location, params={"digest": digest_of(HEAD)})
            body.go_on.set()
        assert refused.status_code == 409, refused.text
        assert results["patch"].status_code == 202
        assert not await assert_blob_is_its_digest(two, "a", digest_of(HEAD))
        whole = HEAD + TAIL
        done = await two.put(location, params={"digest": digest_of(whole)})
        assert done.status_code == 201, done.text
        assert await assert_blob_is_its_digest(one, "a", digest_of(whole))


@pytest.mark.redis
async def test_stores_on_two_hosts_are_ordered_through_redis(tmp_path: Path) -> None:
    """Replicas on different hosts share only the storage and Redis (each with its own
    embedded fallback): a PUT on one waits for a PATCH on the other."""
    client = await redis_client()
    prefix = unique_prefix()
    hosts = tuple(
        FallbackCoordinator(RedisCoordinator(client, prefix), LocalCoordinator()) for _ in range(2)
    )
    one, two = stores_on_one_root(tmp_path / "root", (hosts[0], hosts[1]), upload_wait=5)
    try:
        async with one, two:
            r = await one.post("/v2/a/blobs/uploads/")
            location = r.headers["location"]
            body = StalledBody()
            results: dict[str, httpx.Response] = {}
            put_done = anyio.Event()

            async def patch() -> None:
                results["patch"] = await one.patch(location, content=body)

            async def put() -> None:
                results["put"] = await two.put(location, params={"digest": digest_of(HEAD)})
                put_done.set()

            async with anyio.create_task_group() as tg:
                tg.start_soon(patch)
                await body.head_sent.wait()
                tg.start_soon(put)
                with anyio.move_on_after(1.0):
                    await put_done.wait()
                body.go_on.set()
            assert results["patch"].status_code == 202
            assert results["put"].status_code == 400, results["put"].text
            assert code(results["put"]) == "DIGEST_INVALID"
            assert not await assert_blob_is_its_digest(two, "a", digest_of(HEAD))
    finally:
        for host in hosts:
            await host.aclose()
        await delete_prefix(client, prefix)
        await client.aclose()


async def test_abandoned_sessions_leave_no_state_behind_in_the_process() -> None:
    """The old per-upload lock map grew by one lock per session, forever."""
    coordinator = LocalCoordinator()
    sessions = UploadSessions(coordinator, hash_limit=8)
    blobs = RepositoryBlobs("a", BlobStore(create_driver("inmemory", {})))
    uploads = UploadStore("a", blobs, sessions)
    started = []
    for i in range(40):
        status = await uploads.start()
        await uploads.append(status.id, chunks(b"chunk %d" % i))
        if i % 4 == 0:
            await uploads.cancel(status.id)
        started.append(status.id)
    assert len(sessions.hashes) <= 8
    for upload_id in started:
        assert await coordinator.holder_info(lease_key(("a", upload_id))) is None


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part
