"""Each check kind passing and failing, against real files, servers and listeners."""

from __future__ import annotations

import asyncio
import errno
from pathlib import Path

import pytest

from mirror.health.checks import CheckFailed, FileCheck, HttpCheck, StorageCheck, TcpCheck
from mirror.store.driver import FileInfo
from mirror.store.drivers import create_driver
from mirror.store.drivers.base import CheckedDriver
from mirror.store.drivers.inmemory import InMemoryDriver
from tests.support.redis import closed_port
from tests.support.webhook import WebhookReceiver

pytestmark = pytest.mark.anyio


class BrokenDisk(InMemoryDriver):
    """A backend whose every stat fails as a dying disk's would (fault injection)."""

    async def stat(self, path: str) -> FileInfo:
        raise OSError(errno.EIO, "Input/output error")


async def test_storage_passes_when_the_driver_answers(tmp_path: Path) -> None:
    driver = create_driver("filesystem", {"rootdirectory": str(tmp_path / "root")})
    await StorageCheck(driver)()  # no root yet: the backend answered PathNotFound
    await driver.put_content("/x", b"x")
    await StorageCheck(driver)()
    await StorageCheck(create_driver("inmemory", {}))()


async def test_storage_fails_when_the_driver_cannot_stat() -> None:
    with pytest.raises(Exception, match="Input/output error"):
        await StorageCheck(CheckedDriver(BrokenDisk()))()


async def test_a_file_check_fails_while_the_file_exists(tmp_path: Path) -> None:
    marker = tmp_path / "out-of-rotation"
    check = FileCheck(str(marker))
    await check()
    marker.write_text("")
    with pytest.raises(CheckFailed, match=r"^file exists$"):
        await check()
    marker.unlink()
    await check()
    await FileCheck(str(tmp_path / "not-a-dir" / "x"))()


async def test_http_passes_on_the_expected_status_and_sends_the_headers() -> None:
    async with WebhookReceiver(status=200) as server:
        check = HttpCheck(server.url, headers={"Authorization": ["Basic QWxh"]})
        await check()
        await check.aclose()
    assert server.requests[0].method == "HEAD"
    assert server.requests[0].headers["authorization"] == "Basic QWxh"


async def test_http_fails_on_another_status() -> None:
    async with WebhookReceiver(status=503) as server:
        check = HttpCheck(server.url)
        with pytest.raises(CheckFailed, match=r"unexpected status: 503$"):
            await check()
        server.status = 204
        await HttpCheck(server.url, statuscode=204)()
        with pytest.raises(CheckFailed, match="unexpected status: 204"):
            await check()
        await check.aclose()


async def test_http_fails_when_nothing_answers_in_time() -> None:
    check = HttpCheck(f"http://127.0.0.1:{closed_port()}/health")
    with pytest.raises(CheckFailed, match="error while checking: ConnectError"):
        await check()
    await check.aclose()
    async with WebhookReceiver() as server:
        server.hold()
        slow = HttpCheck(server.url, timeout=0.2)
        with pytest.raises(CheckFailed, match="Timeout"):
            await slow()
        await slow.aclose()


async def test_tcp_passes_while_something_listens() -> None:
    accepted: list[bool] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(True)
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        await TcpCheck(f"127.0.0.1:{port}")()
    finally:
        server.close()
        await server.wait_closed()
    with pytest.raises(CheckFailed, match=f"127.0.0.1:{port}: connection failed"):
        await TcpCheck(f"127.0.0.1:{port}")()


def test_bad_check_settings_are_refused() -> None:
    for addr in ("redis", "redis:", ":6379", "host:99999", "[::1]"):
        with pytest.raises(ValueError, match="host:port"):
            TcpCheck(addr)
    assert (TcpCheck("[::1]:6379").host, TcpCheck("[::1]:6379").port) == ("::1", 6379)
    with pytest.raises(ValueError, match="http"):
        HttpCheck("redis://x:1")
    with pytest.raises(ValueError, match="single-line ASCII"):
        HttpCheck("http://x/", headers={"Authorization": ["Basic\nX"]})
    with pytest.raises(ValueError, match="positive"):
        TcpCheck("h:1", timeout=0)
