"""The object store failing mid-upload, mid-fill and under reads, seen by a client of the
API: 503 UNAVAILABLE (never a 500) - or, for a pull-through download whose first bytes
were sent already, a cut connection -, nothing partial visible, and the same session and
blobs work again once the store is back (the drivers' bounded retries, through a fault
proxy)."""

from __future__ import annotations

import logging

import httpx
import pytest

from mirror.digests import Digest
from mirror.proxy.app import standalone_app
from mirror.store import paths
from mirror.store.driver import PathNotFound
from tests.objstore_suite import PART
from tests.support.asgiserver import serving
from tests.support.faultproxy import Mode
from tests.support.oci import digest_of, push_blob, random_bytes
from tests.support.upstreams import make_rig
from tests.test_driver_faults import Faulty, faulty  # noqa: F401 (fixture)

pytestmark = pytest.mark.anyio
FAULTS: tuple[Mode, ...] = ("slowdown", "error", "refuse")


def unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["errors"][0]["code"] == "UNAVAILABLE"


@pytest.mark.parametrize("fault", FAULTS)
async def test_an_upload_survives_an_outage(faulty: Faulty, fault: Mode) -> None:  # noqa: F811
    app = standalone_app(faulty.driver)
    data = random_bytes(300_000, 9)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://registry.test"
    ) as client:
        started = await client.post("/v2/team/app/blobs/uploads/")
        location = started.headers["location"]
        first = await client.patch(location, content=data[:100_000])
        assert first.status_code == 202
        location = first.headers["location"]

        await faulty.proxy.set(fault)
        unavailable(await client.patch(location, content=data[100_000:200_000]))
        separator = "&" if "?" in location else "?"
        unavailable(await client.put(f"{location}{separator}digest={digest_of(data)}"))
        unavailable(await client.post("/v2/team/app/blobs/uploads/"))
        await faulty.proxy.set("pass")

        # Nothing of the failed chunk is there; the session goes on from its last chunk.
        status = await client.get(location)
        assert status.status_code == 204 and status.headers["range"] == "0-99999"
        second = await client.patch(
            location, content=data[100_000:], headers={"Content-Range": "100000-299999"}
        )
        assert second.status_code == 202, second.text
        separator = "&" if "?" in second.headers["location"] else "?"
        done = await client.put(f"{second.headers['location']}{separator}digest={digest_of(data)}")
        assert done.status_code == 201, done.text
        got = await client.get(f"/v2/team/app/blobs/{digest_of(data)}")
        assert got.content == data


async def test_reads_during_an_outage_are_503_then_served(faulty: Faulty) -> None:  # noqa: F811
    app = standalone_app(faulty.driver)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://registry.test"
    ) as client:
        data = random_bytes(50_000, 10)
        digest = await push_blob(client, "team/app", data)
        await faulty.proxy.set("slowdown")
        unavailable(await client.get(f"/v2/team/app/blobs/{digest}"))
        assert (await client.head(f"/v2/team/app/blobs/{digest}")).status_code == 503
        unavailable(await client.get("/v2/team/app/tags/list"))
        await faulty.proxy.set("pass")
        assert (await client.get(f"/v2/team/app/blobs/{digest}")).content == data


@pytest.mark.parametrize("phase", ["writing", "committing"])
@pytest.mark.parametrize("fault", FAULTS)
async def test_a_fill_survives_an_outage(
    faulty: Faulty,  # noqa: F811
    fault: Mode,
    phase: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The store fails after the first bytes of a pull-through download reached the
    # client: while its parts are uploaded (a blob of several parts), or at the commit
    # (a blob of one part, put whole at the commit).
    size = 3 * PART + 17 if phase == "writing" else PART // 4
    data = random_bytes(size, 11)
    rig = make_rig(storage_driver=faulty.driver, prefetch=False)
    try:
        digest = await push_blob(rig.upstream, "library/app", data)
        rig.transport.slow = (0.01, 256 * 1024) if phase == "writing" else (0.02, 64 * 1024)
        async with serving(rig.app) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
            async with client.stream("GET", f"/v2/app/blobs/{digest}") as first:
                assert first.status_code == 200
                chunks = first.aiter_raw()
                got = await anext(chunks)
                await faulty.proxy.set(fault)
                try:
                    async for chunk in chunks:
                        got += chunk
                    whole = True
                except httpx.TransportError:  # cut: the bytes sent were no blob
                    whole = False
            assert (got == data) if whole else len(got) < len(data)
            # Meanwhile another client is told plainly.
            unavailable(await client.get(f"/v2/app/blobs/{digest}"))
            await rig.fills.drain()
            failed = rig.metrics.counter("mirror_fills_total", "", ("result",)).get("failed")
            assert failed == 1
            await faulty.proxy.set("pass")
            # Nothing of the failed download is there; the next pull downloads it again.
            with pytest.raises(PathNotFound):
                await faulty.driver.stat(paths.blob_data(Digest.parse(digest)))
            again = await client.get(f"/v2/app/blobs/{digest}")
            assert again.status_code == 200 and again.content == data
            await rig.fills.drain()
            assert await rig.store.blobs.exists(Digest.parse(digest))
            assert rig.transport.count("GET", "/blobs/") == 2
    finally:
        await rig.aclose()
    # The failure is logged as one line, without a traceback.
    failures = [r for r in caplog.records if r.getMessage().startswith(f"download of {digest}")]
    assert len(failures) == 1 and failures[0].exc_info is None
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
