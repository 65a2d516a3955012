"""Batched listings and deletions on a local driver answer what the driver would."""

from __future__ import annotations

from pathlib import Path

import pytest

from mirror.lifecycle.layout import Layout
from mirror.store.driver import LocalPath
from mirror.store.drivers import create_driver
from mirror.store.drivers.base import temp_name

pytestmark = pytest.mark.anyio


async def test_batched_calls_match_the_driver(tmp_path: Path) -> None:
    driver = create_driver("filesystem", {"rootdirectory": str(tmp_path)})
    assert isinstance(driver, LocalPath)
    await driver.put_content("/a/one", b"1")
    await driver.put_content("/a/two", b"2")
    await driver.put_content("/b/c/three", b"3")
    (tmp_path / "a" / temp_name("one")).write_bytes(b"a writer's hidden temp file")
    layout = Layout(driver, 4)
    wanted = ["/a", "/b", "/missing", "/a/one"]
    assert await layout.listdirs(wanted) == [
        await driver.list("/a"),
        await driver.list("/b"),
        [],
        [],
    ]
    assert await layout.delete_many(["/a/one", "/b", "/a/one", "/nothing"]) == [
        True,
        True,
        False,
        False,
    ]
    assert await driver.list("/") == ["a"]
    assert await driver.list("/a") == ["two"]
