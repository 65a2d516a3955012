from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from mirror.errors import NameUnknown
from mirror.upstream.routing import RoutingTable, UpstreamRoute
from tests.support.oci import push_blob, push_image
from tests.support.upstreams import MirrorRig, make_rig

pytestmark = pytest.mark.anyio


@pytest.fixture
async def rig() -> AsyncIterator[MirrorRig]:
    rig = make_rig()
    yield rig
    await rig.aclose()


def code(r: httpx.Response) -> str:
    return str(r.json()["errors"][0]["code"])


async def test_ns_selects_upstream_and_is_echoed(rig: MirrorRig) -> None:
    await push_image(rig.upstream, "library/app", "v1")
    r = await rig.mirror.get("/v2/library/app/manifests/v1?ns=docker.io")
    assert r.status_code == 200
    assert r.headers["oci-namespace"] == "docker.io"


async def test_unknown_ns_is_never_dialled(rig: MirrorRig) -> None:
    r = await rig.mirror.get("/v2/library/app/manifests/v1?ns=evil.example.com")
    assert r.status_code == 404 and code(r) == "NAME_UNKNOWN"
    assert "evil.example.com" in r.json()["errors"][0]["message"]
    r = await rig.mirror.get("/v2/library/app/blobs/sha256:" + "a" * 64 + "?ns=127.0.0.1:22")
    assert r.status_code == 404
    assert rig.transport.log == []


async def test_local_namespace_accepts_pushes(rig: MirrorRig) -> None:
    raw, _ = await push_image(rig.mirror, "local/team/app", "v1")
    r = await rig.mirror.get("/v2/local/team/app/manifests/v1")
    assert r.status_code == 200 and r.content == raw
    assert rig.transport.log == []


async def test_push_to_proxied_repository_is_denied(rig: MirrorRig) -> None:
    r = await rig.mirror.post("/v2/library/app/blobs/uploads/")
    assert r.status_code == 403 and code(r) == "DENIED"
    r = await rig.mirror.put("/v2/app/manifests/v1", content=b"{}")
    assert r.status_code == 403
    r = await rig.mirror.delete("/v2/docker.io/library/app/manifests/v1")
    assert r.status_code == 403
    assert rig.transport.log == []


async def test_hybrid_without_default_keeps_plain_names_local() -> None:
    rig = make_rig(default=None)
    try:
        await push_image(rig.upstream, "library/app", "v1")
        raw, _ = await push_image(rig.mirror, "myapp", "v1")
        assert (await rig.mirror.get("/v2/myapp/manifests/v1")).content == raw
        r = await rig.mirror.get("/v2/docker.io/library/app/manifests/v1")
        assert r.status_code == 200
        assert rig.transport.count("GET") == 1
    finally:
        await rig.aclose()


async def test_mount_from_cached_repository_into_local(rig: MirrorRig) -> None:
    digest = await push_blob(rig.upstream, "library/base", b"base layer")
    await rig.mirror.get(f"/v2/base/blobs/{digest}")
    await rig.fills.drain()
    r = await rig.mirror.post(f"/v2/local/app/blobs/uploads/?mount={digest}&from=library/base")
    assert r.status_code == 201
    assert (await rig.mirror.get(f"/v2/local/app/blobs/{digest}")).content == b"base layer"


def test_routing_table_rules() -> None:
    hub = UpstreamRoute("docker.io", ("registry-1.docker.io",))
    ghcr = UpstreamRoute("ghcr.io")
    local = UpstreamRoute("localhost:5000")
    table = RoutingTable([hub, ghcr, local], default="docker.io", local_prefixes=["team/"])
    m = table.route("alpine")
    assert (m.upstream, m.remote_name, m.local_name) == (
        hub,
        "library/alpine",
        "docker.io/library/alpine",
    )
    m = table.route("ghcr.io/org/tool")
    assert (m.upstream, m.remote_name, m.local_name) == (ghcr, "org/tool", "ghcr.io/org/tool")
    m = table.route("org/tool", "ghcr.io")
    assert m.local_name == "ghcr.io/org/tool"
    m = table.route("x/y", "LOCALHOST:5000")
    assert m.local_name == "localhost-5000/x/y"
    m = table.route("registry-1.docker.io/bitnami/redis")
    assert m.local_name == "docker.io/bitnami/redis"
    assert table.route("team/app").upstream is None
    assert table.route("teammate/app").upstream is hub
    with pytest.raises(NameUnknown):
        table.route("x", "quay.io")
    with pytest.raises(ValueError):
        RoutingTable([hub], default="quay.io")
