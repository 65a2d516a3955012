"""The object store failing mid-upload and under reads, seen by a client of the API: 503
UNAVAILABLE (never a 500), nothing partial visible, and the same session and blobs work
again once the store is back (the drivers' bounded retries, through a fault proxy)."""

from __future__ import annotations

import httpx
import pytest

from mirror.proxy.app import standalone_app
from tests.support.faultproxy import Mode
from tests.support.oci import digest_of, push_blob, random_bytes
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
