from __future__ import annotations

import httpx
import pytest

from tests.support.scrape import sample

pytestmark = pytest.mark.anyio


async def test_base_endpoint(client: httpx.AsyncClient) -> None:
    r = await client.get("/v2/")
    assert r.status_code == 200
    assert r.headers["docker-distribution-api-version"] == "registry/2.0"
    assert r.json() == {}


async def test_unknown_endpoint_is_404_with_envelope(client: httpx.AsyncClient) -> None:
    r = await client.get("/v2/foo/bar/unknown/x/y")
    assert r.status_code == 404
    assert r.json()["errors"][0]["code"] == "NOT_FOUND"
    r = await client.get("/nothing")
    assert r.status_code == 404


async def test_method_not_allowed(client: httpx.AsyncClient) -> None:
    r = await client.post("/v2/foo/manifests/latest")
    assert r.status_code == 405
    assert r.json()["errors"][0]["code"] == "UNSUPPORTED"


@pytest.mark.parametrize(
    "name",
    ["UPPER/case", "a/../b", "a//b", "-lead", "trail-", "a" * 256, "x/" * 130 + "x", "a..b"],
)
async def test_invalid_names(client: httpx.AsyncClient, name: str) -> None:
    r = await client.get(f"/v2/{name}/tags/list")
    assert r.status_code in (400, 404), r.text
    if r.status_code == 400:
        assert r.json()["errors"][0]["code"] == "NAME_INVALID"


async def test_name_too_long_is_name_invalid(client: httpx.AsyncClient) -> None:
    name = "/".join(["abcdefghij"] * 24)  # 263 characters, every component valid
    r = await client.get(f"/v2/{name}/manifests/latest")
    assert r.status_code == 400
    assert r.json()["errors"][0]["code"] == "NAME_INVALID"


async def test_metrics_endpoint(client: httpx.AsyncClient) -> None:
    await client.get("/v2/")
    r = await client.get("/metrics")
    assert r.status_code == 200
    found = sample(r.text, "mirror_http_requests_total", route="base", method="GET", status="200")
    assert found is not None and found >= 1
