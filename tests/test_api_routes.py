"""The route table: one handler per (route, method); 405 for other methods, 404 elsewhere."""

from __future__ import annotations

import httpx
import pytest

from mirror.proxy import routes
from tests.support.oci import digest_of, push_image

pytestmark = pytest.mark.anyio

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
DIGEST = digest_of(b"x")
EXAMPLES = {
    "base": "/v2/",
    "catalog": "/v2/_catalog",
    "manifest": "/v2/a/b/manifests/latest",
    "upload_start": "/v2/a/b/blobs/uploads/",
    "upload": "/v2/a/b/blobs/uploads/some-id",
    "blob": f"/v2/a/b/blobs/{DIGEST}",
    "tags": "/v2/a/b/tags/list",
    "referrers": f"/v2/a/b/referrers/{DIGEST}",
}


def test_every_route_has_an_example() -> None:
    assert {route.name for route in routes.ROUTES} == set(EXAMPLES)
    for name, path in EXAMPLES.items():
        found = routes.match(path)
        assert found is not None and found[0].name == name, path


@pytest.mark.parametrize(
    ("name", "method"),
    [
        (route.name, method)
        for route in routes.ROUTES
        for method in METHODS
        if method not in route.handlers
    ],
)
async def test_other_methods_are_405(client: httpx.AsyncClient, name: str, method: str) -> None:
    r = await client.request(method, EXAMPLES[name])
    assert r.status_code == 405
    assert r.headers["docker-distribution-api-version"] == "registry/2.0"
    if method == "HEAD":
        assert r.content == b""
    else:
        assert r.json()["errors"][0]["code"] == "UNSUPPORTED"


@pytest.mark.parametrize("method", METHODS)
async def test_unknown_paths_are_404_for_every_method(
    client: httpx.AsyncClient, method: str
) -> None:
    r = await client.request(method, "/v2/a/b/nothing/here")
    assert r.status_code == 404
    if method != "HEAD":
        assert r.json()["errors"][0]["code"] == "NOT_FOUND"


async def test_head_shares_get_where_the_code_is_shared(client: httpx.AsyncClient) -> None:
    _, digest = await push_image(client, "a/b", "v1")
    for path in ("/v2/", "/v2/_catalog", "/v2/a/b/tags/list", f"/v2/a/b/referrers/{digest}"):
        get = await client.get(path)
        head = await client.head(path)
        assert head.status_code == get.status_code == 200, path
        assert head.content == b"" and get.content != b""
        assert head.headers["content-length"] == str(len(get.content))
        assert head.headers["content-type"] == get.headers["content-type"]
