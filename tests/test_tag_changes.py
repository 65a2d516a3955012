"""Tags change one request at a time (issue 8, racing tag writes): removing the tags of a
deleted manifest leaves alone a tag that was re-pointed meanwhile, and a tag being
changed elsewhere makes the other change wait, not fail."""

from __future__ import annotations

import anyio
import pytest

from mirror.coordination.leases import LocalCoordinator
from mirror.digests import Digest
from mirror.store.drivers import create_driver
from mirror.store.store import Store

pytestmark = pytest.mark.anyio

A = Digest.parse("sha256:" + "a" * 64)
B = Digest.parse("sha256:" + "b" * 64)


@pytest.fixture(params=["inmemory", "filesystem"])
def store(request: pytest.FixtureRequest, tmp_path: object) -> Store:
    params = {"rootdirectory": str(tmp_path)} if request.param == "filesystem" else {}
    return Store(create_driver(str(request.param), params))


async def test_a_tag_re_pointed_meanwhile_is_not_removed_with_the_old_manifest(
    store: Store,
) -> None:
    tags = store.repository("app").tags
    await tags.tag("v1", A)
    await tags.tag("v1", B)  # after the delete of A listed v1 as pointing at A
    assert not await tags.untag_if("v1", A)
    assert await tags.get("v1") == B
    assert await tags.untag_if("v1", B)
    assert await tags.get("v1") is None and await tags.all() == []


async def test_a_tag_change_waits_for_the_one_under_way() -> None:
    coordinator = LocalCoordinator()
    store = Store(create_driver("inmemory", {}), coordinator=coordinator)
    tags = store.repository("app").tags
    await tags.tag("v1", A)
    held = await coordinator.acquire("tag:app/v1", 10.0)
    assert held is not None
    async with anyio.create_task_group() as group:
        group.start_soon(tags.tag, "v1", B)
        await anyio.sleep(0.1)
        assert await tags.get("v1") == A  # still waiting
        await held.release()
    assert await tags.get("v1") == B
