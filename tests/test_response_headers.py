"""Response headers built from data that is not ours (upstream error text in Warning, an
upstream's Retry-After, the operator's http.headers) are rendered as valid field values:
no CR, LF or NUL, nothing outside ASCII, and never a 500 because of them."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from mirror.proxy.app import build_app
from mirror.proxy.headers import header_value, render
from mirror.store.drivers import create_driver
from mirror.store.store import Store
from mirror.store.view import LocalResolver
from tests.support.oci import push_image
from tests.support.upstreams import MirrorRig, make_rig

pytestmark = pytest.mark.anyio

HOSTILE = "down\r\nX-Injected: yes\x00 caf\u00e9 \u2603 \ud800"
FIELD_VALUE = re.compile(rb"^[\x20-\x7e\t]*$")
TOKEN = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9a-z]+$")


def assert_valid(response: httpx.Response) -> None:
    for name, value in response.headers.raw:
        assert TOKEN.match(name), name
        assert FIELD_VALUE.match(value), (name, value)
    assert "x-injected" not in response.headers


@pytest.fixture
async def rig() -> AsyncIterator[MirrorRig]:
    rig = make_rig(freshness=0.0)
    yield rig
    await rig.aclose()


def hostile_upstream_error(request: httpx.Request) -> httpx.Response:
    body = {"errors": [{"code": "UNAVAILABLE", "message": HOSTILE.replace("\ud800", "")}]}
    return httpx.Response(503, json=body)


async def test_upstream_error_text_in_warning_is_rendered_safely(rig: MirrorRig) -> None:
    await push_image(rig.upstream, "library/app", "v1")
    await rig.mirror.get("/v2/app/manifests/v1")
    rig.transport.fault = hostile_upstream_error
    for method, path in [
        ("GET", "/v2/app/manifests/v1"),
        ("HEAD", "/v2/app/manifests/v1"),
        ("GET", "/v2/app/tags/list"),
    ]:
        r = await rig.mirror.request(method, path)
        assert r.status_code == 200, (method, path, r.text)
        # The upstream's own text is not quoted to clients at all (it is logged).
        assert r.headers["warning"].startswith('299 - "upstream docker.io unavailable')
        assert "caf" not in r.headers["warning"]
        assert_valid(r)
    r = await rig.mirror.get("/v2/app/manifests/missing")
    assert r.status_code == 503
    assert_valid(r)


@pytest.mark.parametrize("retry_after", [b"5\r\nX-Injected: yes", "5 \u2603".encode(), b"5\x00"])
async def test_upstream_retry_after_is_rendered_safely(rig: MirrorRig, retry_after: bytes) -> None:
    rig.transport.fault = lambda request: httpx.Response(
        429, headers=[(b"retry-after", retry_after)], json={"errors": []}
    )
    r = await rig.mirror.get("/v2/app/manifests/v1")
    assert r.status_code == 429, r.text
    # Not delta-seconds nor an HTTP date: dropped where it is read (registryhttp/headers.py).
    assert "retry-after" not in r.headers
    assert_valid(r)


async def test_configured_headers_are_rendered_safely() -> None:
    store = Store(create_driver("inmemory", {}))
    headers = {"X-Note": HOSTILE, "Bad Name": "dropped", "X-Plain": "kept as is"}
    app = build_app(store, LocalResolver(store), headers=headers)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://r.test") as client:
        for method, path in [
            ("GET", "/v2/"),
            ("GET", "/v2/a/manifests/v1"),
            ("HEAD", "/v2/a/manifests/v1"),
            ("POST", "/v2/a/manifests/v1"),
            ("GET", "/v2/nothing"),
        ]:
            r = await client.request(method, path)
            assert r.status_code < 500, (method, path)
            assert_valid(r)
            assert r.headers["x-plain"] == "kept as is"
            assert r.headers["x-note"] == "down X-Injected: yes  caf%C3%A9 %E2%98%83 %ED%A0%80"
            assert "bad name" not in r.headers


def test_header_value() -> None:
    assert header_value('plain text, "quoted"; ok') == 'plain text, "quoted"; ok'
    assert header_value("a\r\n\r\nb\x00c\x7fd") == "a b c d"
    assert header_value("\ttab\tinside ") == "tab\tinside"
    assert header_value("/v2/caf\u00e9/x%41") == "/v2/caf%C3%A9/x%41"
    assert header_value("") == ""


def test_render_keeps_order_and_the_last_of_a_name() -> None:
    rendered = render({"B": "1", "a": "2", "b": "3", "Bad Name": "x", "": "y"})
    assert rendered == [(b"b", b"3"), (b"a", b"2")]
