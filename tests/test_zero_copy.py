"""Cached blobs through uvicorn's zero-copy send (`mirror.uvicorn_sendfile`): whole and
ranged GETs, HEAD, keep-alive after them, clients that read slowly or leave, and TLS,
where the extension is not offered and the blob is streamed."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from starlette.types import Message, Receive, Scope, Send

from mirror.proxy.app import standalone_app
from mirror.store.drivers import create_driver
from mirror.uvicorn_sendfile import EXTENSION, _sendfile
from tests.support.asgiserver import serving
from tests.support.mirrorproc import run_mirror
from tests.support.oci import push_blob, random_bytes
from tests.support.tokens import certificate, rsa_key, write_bundle

pytestmark = pytest.mark.anyio

PROTOCOL = "mirror.uvicorn_sendfile:SendfileProtocol"
MiB = 1024 * 1024


class Recorder:
    """The app, noting which response messages it sent and which extensions it saw."""

    def __init__(self, root: Path) -> None:
        self.app = standalone_app(create_driver("filesystem", {"rootdirectory": str(root)}))
        self.sent: list[str] = []
        self.offered: list[bool] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.offered.append(EXTENSION in (scope.get("extensions") or {}))

        async def noting(message: Message) -> None:
            self.sent.append(message["type"])
            await send(message)

        await self.app(scope, receive, noting)


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[Recorder, str]]:
    recorder = Recorder(tmp_path / "store")
    async with serving(recorder, http=PROTOCOL) as url:
        yield recorder, url


async def test_whole_and_ranged_blobs_go_by_sendfile_on_one_connection(
    served: tuple[Recorder, str],
) -> None:
    recorder, url = served
    data = random_bytes(9 * MiB + 123, 41)
    async with httpx.AsyncClient(base_url=url) as client:
        digest = await push_blob(client, "app", data)
        recorder.sent.clear()
        whole = await client.get(f"/v2/app/blobs/{digest}")
        assert whole.status_code == 200 and whole.content == data
        assert whole.headers["content-length"] == str(len(data))
        ranged = await client.get(
            f"/v2/app/blobs/{digest}", headers={"Range": "bytes=1000-2000999"}
        )
        assert ranged.status_code == 206 and ranged.content == data[1000:2001000]
        assert ranged.headers["content-range"] == f"bytes 1000-2000999/{len(data)}"
        tail = await client.get(f"/v2/app/blobs/{digest}", headers={"Range": "bytes=-5"})
        assert tail.status_code == 206 and tail.content == data[-5:]
        head = await client.head(f"/v2/app/blobs/{digest}")
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-length"] == str(len(data))
        # The connection carries on after them (keep-alive, the body fully framed).
        again = await client.get(f"/v2/app/blobs/{digest}")
        assert again.content == data
        assert (await client.get("/v2/app/blobs/sha256:" + "0" * 64)).status_code == 404
    assert recorder.sent.count(EXTENSION) == 4
    assert all(recorder.offered)


async def test_a_slow_reader_gets_every_byte(served: tuple[Recorder, str]) -> None:
    """More than the socket buffers hold: sendfile meets a full socket and waits."""
    _, url = served
    data = random_bytes(24 * MiB, 42)
    async with httpx.AsyncClient(base_url=url) as client:
        digest = await push_blob(client, "app", data)
        received = bytearray()
        async with client.stream("GET", f"/v2/app/blobs/{digest}") as response:
            async for piece in response.aiter_raw(64 * 1024):
                received += piece
                if len(received) < 4 * MiB:
                    await asyncio.sleep(0.002)
        assert bytes(received) == data


async def test_a_client_that_leaves_does_not_hurt_the_next(served: tuple[Recorder, str]) -> None:
    _, url = served
    data = random_bytes(24 * MiB, 43)
    async with httpx.AsyncClient(base_url=url) as client:
        digest = await push_blob(client, "app", data)
    host, port = url.removeprefix("http://").split(":")
    for _ in range(3):
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(f"GET /v2/app/blobs/{digest} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        await writer.drain()
        await reader.readexactly(64 * 1024)
        writer.transport.abort()  # gone mid-body
    async with httpx.AsyncClient(base_url=url) as client:
        response = await client.get(f"/v2/app/blobs/{digest}")
        assert response.status_code == 200 and response.content == data


async def test_tls_streams_the_blob_instead(tmp_path: Path) -> None:
    key = rsa_key()
    cert = certificate("127.0.0.1", key)
    cert_path = write_bundle(tmp_path / "cert.pem", cert)
    key_path = tmp_path / "key.pem"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    recorder = Recorder(tmp_path / "store")
    context = ssl.create_default_context(cafile=str(cert_path))
    context.check_hostname = False
    data = random_bytes(3 * MiB + 7, 44)
    async with (
        serving(
            recorder, http=PROTOCOL, ssl_certfile=str(cert_path), ssl_keyfile=str(key_path)
        ) as url,
        httpx.AsyncClient(base_url=url, verify=context) as client,
    ):
        digest = await push_blob(client, "app", data)
        whole = await client.get(f"/v2/app/blobs/{digest}")
        assert whole.status_code == 200 and whole.content == data
        ranged = await client.get(f"/v2/app/blobs/{digest}", headers={"Range": "bytes=5-9"})
        assert ranged.status_code == 206 and ranged.content == data[5:10]
    assert EXTENSION not in recorder.sent
    assert not any(recorder.offered)


def test_mirror_serve_on_uvicorn_sends_blobs_whole_and_ranged(tmp_path: Path) -> None:
    """The real server process (uvloop, `http.server: uvicorn`), and its access log."""
    data = random_bytes(16 * MiB + 5, 45)
    with run_mirror(tmp_path, server="uvicorn") as mirror, httpx.Client(base_url=mirror.url) as c:
        started = c.post("/v2/app/blobs/uploads/")
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        put = c.put(started.headers["location"], params={"digest": digest}, content=data)
        assert put.status_code == 201, put.text
        for _ in range(2):  # the second on the same connection
            whole = c.get(f"/v2/app/blobs/{digest}")
            assert whole.status_code == 200 and whole.content == data
        ranged = c.get(f"/v2/app/blobs/{digest}", headers={"Range": "bytes=3-"})
        assert ranged.status_code == 206 and ranged.content == data[3:]
        assert c.head(f"/v2/app/blobs/{digest}").headers["content-length"] == str(len(data))
    log = mirror.log_path.read_text()
    assert f'"GET /v2/app/blobs/{digest} HTTP/1.1" 200 {len(data)}' in log, log[-2000:]
    assert f" 206 {len(data) - 3}" in log


async def test_a_socket_closed_mid_send_is_never_written_through_its_reused_number(
    tmp_path: Path,
) -> None:
    """uvicorn closes a leaving client's socket while the sender waits for it to drain,
    and the next connection may get the same descriptor number at once. The sender must
    stop there, not send the rest of this blob into that other connection."""
    leaving, peer = socket.socketpair()
    leaving.setblocking(False)
    blob = tmp_path / "blob"
    blob.write_bytes(random_bytes(32 * MiB, 45))
    cycle = SimpleNamespace(disconnected=False, transport=SimpleNamespace(is_closing=lambda: False))
    with blob.open("rb") as file:
        sending = asyncio.create_task(
            _sendfile(cycle, leaving, file.fileno(), 0, 32 * MiB)  # type: ignore[arg-type]
        )
        await asyncio.sleep(0.05)  # the socket's buffers are full: the sender waits
        number = leaving.fileno()
        leaving.close()
        other, other_peer = socket.socketpair()  # the next connection takes the number
        for end in (other, other_peer):
            end.setblocking(False)
        victim = other_peer if other.fileno() == number else other
        assert number in (other.fileno(), other_peer.fileno())
        peer.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            while peer.recv(MiB):  # the leaver's side drains: writable again
                pass
        with pytest.raises(ConnectionResetError):
            await asyncio.wait_for(sending, 5)
    with pytest.raises(BlockingIOError):
        victim.recv(MiB)  # nothing arrived on the other connection
    for end in (peer, other, other_peer):
        end.close()
