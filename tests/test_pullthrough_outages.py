from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support.oci import push_blob, push_image
from tests.support.upstreams import MirrorRig, make_rig

pytestmark = pytest.mark.anyio


@pytest.fixture
async def rig() -> AsyncIterator[MirrorRig]:
    rig = make_rig(freshness=0.0)
    yield rig
    await rig.aclose()


def code(r: httpx.Response) -> str:
    return str(r.json()["errors"][0]["code"])


async def test_upstream_down_serves_cached_tag_with_warning(rig: MirrorRig) -> None:
    raw, digest = await push_image(rig.upstream, "library/app", "v1")
    await rig.mirror.get("/v2/app/manifests/v1")
    rig.transport.down = True
    r = await rig.mirror.get("/v2/app/manifests/v1")
    assert r.status_code == 200 and r.content == raw
    assert r.headers["warning"].startswith('299 - "upstream docker.io unavailable')
    h = await rig.mirror.head("/v2/app/manifests/v1")
    assert h.status_code == 200 and h.headers["docker-content-digest"] == digest
    assert "warning" in h.headers
    stale = rig.metrics.counter("mirror_stale_serves_total", "", ("kind",)).get("manifest")
    assert stale == 2


async def test_upstream_down_uncached_is_503_not_404(rig: MirrorRig) -> None:
    rig.transport.down = True
    r = await rig.mirror.get("/v2/app/manifests/v1")
    assert r.status_code == 503 and code(r) == "UNAVAILABLE"
    r = await rig.mirror.get("/v2/app/blobs/sha256:" + "1" * 64)
    assert r.status_code == 503 and code(r) == "UNAVAILABLE"
    r = await rig.mirror.head("/v2/app/manifests/v1")
    assert r.status_code == 503


@pytest.mark.parametrize("status", [500, 502, 401])
async def test_upstream_errors_fall_back_to_cache(rig: MirrorRig, status: int) -> None:
    raw, _ = await push_image(rig.upstream, "library/app", "v1")
    await rig.mirror.get("/v2/app/manifests/v1")
    rig.transport.fault = lambda request: httpx.Response(status, json={"errors": []})
    r = await rig.mirror.get("/v2/app/manifests/v1")
    assert r.status_code == 200 and r.content == raw and "warning" in r.headers
    r = await rig.mirror.get("/v2/other/manifests/v1")
    assert r.status_code == 503


async def test_rate_limited_passes_retry_after_for_uncached(rig: MirrorRig) -> None:
    raw, _ = await push_image(rig.upstream, "library/app", "v1")
    await rig.mirror.get("/v2/app/manifests/v1")
    rig.transport.fault = lambda request: httpx.Response(
        429, headers={"Retry-After": "42"}, json={"errors": [{"code": "TOOMANYREQUESTS"}]}
    )
    r = await rig.mirror.get("/v2/app/manifests/v1")
    assert r.status_code == 200 and r.content == raw and "warning" in r.headers
    r = await rig.mirror.get("/v2/other/manifests/v1")
    assert r.status_code == 429 and code(r) == "TOOMANYREQUESTS"
    assert r.headers["retry-after"] == "42"


async def test_token_endpoint_down_falls_back(rig: MirrorRig) -> None:
    raw, _ = await push_image(rig.upstream, "library/app", "v1")
    await rig.mirror.get("/v2/app/manifests/v1")

    def challenge(request: httpx.Request) -> httpx.Response | None:
        if request.url.host == "auth.test":
            raise httpx.ConnectError("token service down", request=request)
        return httpx.Response(
            401,
            headers={"WWW-Authenticate": 'Bearer realm="http://auth.test/token",service="x"'},
        )

    rig.transport.fault = challenge
    r = await rig.mirror.get("/v2/app/manifests/v1")
    assert r.status_code == 200 and r.content == raw and "warning" in r.headers


async def test_circuit_breaker_stops_waiting_on_a_dead_upstream() -> None:
    rig = make_rig(freshness=0.0, breaker=(2, 60.0))
    try:
        await push_image(rig.upstream, "library/app", "v1")
        await rig.mirror.get("/v2/app/manifests/v1")
        rig.transport.down = True
        rig.transport.log.clear()
        for _ in range(6):
            r = await rig.mirror.get("/v2/app/manifests/v1")
            assert r.status_code == 200
        assert len(rig.transport.log) == 2  # then the breaker is open
        gauge = rig.metrics.gauge("mirror_upstream_breaker_state", "", ("upstream",))
        assert gauge.get("docker.io") == 2.0
    finally:
        await rig.aclose()


async def test_offline_upstream_serves_cache_only() -> None:
    rig = make_rig(freshness=0.0)
    try:
        raw, _ = await push_image(rig.upstream, "library/app", "v1")
        await rig.mirror.get("/v2/app/manifests/v1")
        rig.offline_switch.offline = True
        rig.transport.log.clear()
        r = await rig.mirror.get("/v2/app/manifests/v1")
        assert r.status_code == 200 and r.content == raw
        r = await rig.mirror.get("/v2/new/manifests/v1")
        assert r.status_code == 503
        assert rig.transport.log == []
    finally:
        await rig.aclose()


async def test_cached_blobs_served_while_down(rig: MirrorRig) -> None:
    digest = await push_blob(rig.upstream, "library/app", b"layer bytes")
    await rig.mirror.get(f"/v2/app/blobs/{digest}")
    rig.transport.down = True
    r = await rig.mirror.get(f"/v2/app/blobs/{digest}")
    assert r.status_code == 200 and r.content == b"layer bytes"


async def test_denied_repositories_do_not_shut_the_upstream_out() -> None:
    """Docker Hub says 401 for repositories that do not exist; a client asking for five
    of them must not make every uncached pull a 503 (issue 8, item 3)."""
    rig = make_rig(freshness=0.0, breaker=(2, 60.0))
    try:
        raw, _ = await push_image(rig.upstream, "library/app", "v1")
        challenge = {"WWW-Authenticate": 'Bearer realm="http://upstream.test/token"'}

        def deny(request: httpx.Request) -> httpx.Response | None:
            if "/secret/" in request.url.path:
                return httpx.Response(401, headers=challenge)
            if request.url.path == "/token":
                return httpx.Response(200, json={"token": "anonymous"})
            return None

        rig.transport.fault = deny
        for i in range(6):
            r = await rig.mirror.get(f"/v2/secret/app{i}/manifests/v1")
            assert r.status_code == 503
        r = await rig.mirror.get("/v2/app/manifests/v1")
        assert r.status_code == 200 and r.content == raw
        gauge = rig.metrics.gauge("mirror_upstream_breaker_state", "", ("upstream",))
        assert gauge.get("docker.io") == 0.0
    finally:
        await rig.aclose()


def header_safe(value: str) -> bool:
    return all(" " <= c <= "~" for c in value)


async def test_upstream_text_never_reaches_response_headers(rig: MirrorRig) -> None:
    """Upstream error text with CR/LF, NUL or non-Latin-1 characters, a bad Retry-After or
    Content-Type, must not turn an answer into a 500 (issue 8, item 7)."""
    raw, digest = await push_image(rig.upstream, "library/app", "v1")
    await rig.mirror.get("/v2/app/manifests/v1")
    message = "down\r\nX-Injected: yes \u2603\x00"
    rig.transport.fault = lambda request: httpx.Response(
        500, json={"errors": [{"code": "UNKNOWN", "message": message}]}
    )
    r = await rig.mirror.get("/v2/app/manifests/v1")
    assert r.status_code == 200 and r.content == raw
    assert header_safe(r.headers["warning"]) and "Injected" not in r.headers["warning"]
    h = await rig.mirror.head("/v2/app/manifests/v1")
    assert h.status_code == 200 and header_safe(h.headers["warning"])

    rig.transport.fault = lambda request: httpx.Response(
        429, headers=[(b"retry-after", b"\xe2\x98\x83")], json={"errors": []}
    )
    r = await rig.mirror.get("/v2/other/manifests/v1")
    assert r.status_code == 429 and "retry-after" not in r.headers

    def odd_type(request: httpx.Request) -> httpx.Response | None:
        if request.method != "HEAD":
            return None
        headers = [
            (b"content-type", b"\xe2\x98\x83/x\x00"),
            (b"docker-content-digest", digest.encode()),
            (b"content-length", str(len(raw)).encode()),
        ]
        return httpx.Response(200, headers=headers)

    rig.transport.fault = odd_type
    h = await rig.mirror.head(f"/v2/fresh/manifests/{digest}")
    assert h.status_code == 200 and header_safe(h.headers["content-type"])


async def test_upstream_details_are_not_reflected_to_clients(rig: MirrorRig) -> None:
    """The client learns that the upstream is unavailable, not its hosts, paths or
    messages (issue 8, low): those go to the log."""
    rig.transport.fault = lambda request: httpx.Response(
        500, json={"errors": [{"code": "UNKNOWN", "message": "db-7.corp.internal:5432 refused"}]}
    )
    for path in ("/v2/app/manifests/v1", f"/v2/app/blobs/sha256:{'1' * 64}", "/v2/app/tags/list"):
        r = await rig.mirror.get(path)
        assert r.status_code == 503 and code(r) == "UNAVAILABLE"
        for leak in ("corp.internal", "upstream.test", "/v2/library", "500"):
            assert leak not in r.text, (path, r.text)
        assert "upstream docker.io is unavailable" in r.json()["errors"][0]["message"]


async def test_an_upstream_503_retry_after_is_passed_on(rig: MirrorRig) -> None:
    rig.transport.fault = lambda request: httpx.Response(503, headers={"Retry-After": "120"})
    r = await rig.mirror.get("/v2/app/manifests/v1")
    assert r.status_code == 503 and r.headers["retry-after"] == "120"
    r = await rig.mirror.get(f"/v2/app/blobs/sha256:{'1' * 64}")
    assert r.status_code == 503 and r.headers["retry-after"] == "120"
