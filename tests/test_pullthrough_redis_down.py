"""Redis going away degrades coordination to the embedded one; it never fails a pull."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.oci import push_blob, push_image, random_bytes
from tests.support.processes import free_port
from tests.support.upstreams import make_rig

pytestmark = pytest.mark.anyio


async def test_pulls_work_with_redis_unreachable() -> None:
    rig = make_rig(redis=f"127.0.0.1:{free_port()}")
    metrics = rig.metrics
    try:
        raw, _ = await push_image(rig.upstream, "library/app", "v1")
        data = random_bytes(2 * 1024 * 1024, 9)
        digest = await push_blob(rig.upstream, "library/app", data)
        r = await rig.mirror.get("/v2/app/manifests/v1")
        assert r.status_code == 200 and r.content == raw
        results = await asyncio.gather(
            *[rig.mirror.get(f"/v2/app/blobs/{digest}") for _ in range(4)]
        )
        assert all(x.status_code == 200 and x.content == data for x in results)
        assert rig.transport.count("GET", f"/blobs/{digest}") == 1
        fallbacks = metrics.counter("mirror_redis_fallbacks_total", "", ("component",))
        assert fallbacks.get("coordination") >= 1
        assert fallbacks.get("metadata") >= 1
    finally:
        await rig.aclose()
