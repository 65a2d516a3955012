"""`redis.prefix`: two deployments on one Redis database keep apart (issue 8, low).

With one fixed prefix, a mirror saw the other deployment's download lease for a blob and
followed a download it could not read (another store), instead of making its own.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.support.configs import error_of, parse
from tests.support.oci import push_blob, random_bytes
from tests.support.redis import REDIS_ADDR, delete_prefix, redis_client, unique_prefix
from tests.support.upstreams import make_rig

pytestmark = [pytest.mark.anyio, pytest.mark.redis]


async def test_two_deployments_on_one_redis_do_not_follow_each_others_downloads() -> None:
    client = await redis_client()
    prefixes = (unique_prefix(), unique_prefix())
    one, two = (make_rig(redis=REDIS_ADDR, redis_prefix=prefix) for prefix in prefixes)
    data = random_bytes(256 * 1024, 11)
    try:
        for rig in (one, two):
            digest = await push_blob(rig.upstream, "library/app", data)
        one.transport.slow = (0.05, 8 * 1024)  # about 1.6 s for the whole blob
        first = asyncio.create_task(one.mirror.get(f"/v2/app/blobs/{digest}"))
        for _ in range(500):
            if [key async for key in client.scan_iter(match=f"{prefixes[0]}lease:*")]:
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError(f"no lease under {prefixes[0]} in 10 s")
        # The other deployment downloads for itself, at its own (full) speed.
        async with asyncio.timeout(1.0):
            second = await two.mirror.get(f"/v2/app/blobs/{digest}")
        assert second.status_code == 200 and second.content == data
        assert two.transport.count("GET", "/blobs/") == 1
        assert not first.done()
        assert (await first).content == data
        assert [key async for key in client.scan_iter(match="mirror:*" + digest[7:] + "*")] == []
    finally:
        for rig in (one, two):
            await rig.aclose()
        for prefix in prefixes:
            await delete_prefix(client, prefix)
        await client.aclose()


def test_the_prefix_defaults_to_todays_keys_and_must_be_a_plain_word() -> None:
    redis = parse("storage: inmemory\nredis:\n  addr: localhost:6379\n").redis
    assert redis is not None and redis.prefix == "mirror:"
    text = "storage: inmemory\nredis:\n  prefix: {}\n"
    assert parse(text.format("'site-b:'")).redis.prefix == "site-b:"  # type: ignore[union-attr]
    for bad in ("''", "'a b'", '"a\\nb"'):
        assert "redis.prefix" in error_of(text.format(bad)), bad
