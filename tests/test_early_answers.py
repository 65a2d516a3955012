"""Early answers: a response sent before the request body was read leaves the connection
either usable for the next request or announced closed (`Connection: close`), never a
kept-alive connection that ends in EOF, on both servers, over a real socket."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.support.mirrorproc import MirrorProcess, run_mirror
from tests.support.rawhttp import RawConnection, RawResponse

KiB = 1024
MiB = 1024 * KiB
JSON = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture(scope="module", params=["granian", "uvicorn"])
def registry(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MirrorProcess]:
    server = str(request.param)
    with run_mirror(tmp_path_factory.mktemp(server), server=server) as process:
        yield process


@dataclass(frozen=True)
class Early:
    """A request a handler answers without reading its body."""

    label: str
    method: str
    target: str  # "{upload}" is replaced by a fresh upload's path
    status: int
    headers: tuple[tuple[str, str], ...] = ()


EARLY = [
    Early("chunk out of order", "PATCH", "{upload}", 416, (("Content-Range", "10-{end}"),)),
    Early("unknown upload", "PATCH", "/v2/early/blobs/uploads/no-such-upload", 404),
    Early("invalid tag", "PUT", "/v2/early/manifests/bad!tag", 400, (("Content-Type", JSON),)),
    Early("unknown endpoint", "POST", "/v2/early/nothing/here", 404),
    Early("method not allowed", "POST", "/v2/early/manifests/latest", 405),
]


def start_upload(connection: RawConnection) -> str:
    started = connection.request("POST", "/v2/early/blobs/uploads/")
    assert started.status == 202, started
    return started.headers["location"]


def early_head(connection: RawConnection, early: Early, size: int) -> bytes:
    target = early.target.replace("{upload}", start_upload(connection))
    headers = {name: value.replace("{end}", str(9 + size)) for name, value in early.headers}
    return connection.head(early.method, target, {**headers, "Content-Length": str(size)})


def assert_usable_or_closed(connection: RawConnection, answer: RawResponse) -> None:
    if answer.closes:
        assert connection.closed_by_server()
        return
    follow_up = connection.request("GET", "/v2/")
    assert follow_up.status == 200, follow_up


@pytest.mark.parametrize("early", EARLY, ids=lambda early: early.label)
def test_small_body_sent_at_once_keeps_the_connection(
    registry: MirrorProcess, early: Early
) -> None:
    """A normal client sends its body straight away: a small one is read and dropped."""
    with RawConnection(registry.url) as connection:
        for _ in range(3):
            connection.send(early_head(connection, early, 2 * KiB) + b"x" * (2 * KiB))
            answer = connection.response()
            assert answer.status == early.status, answer
            assert not answer.closes, answer
        assert connection.request("GET", "/v2/").status == 200


@pytest.mark.parametrize("early", EARLY, ids=lambda early: early.label)
def test_small_chunked_body_keeps_the_connection(registry: MirrorProcess, early: Early) -> None:
    """The same for a body of unknown length (Transfer-Encoding: chunked)."""
    with RawConnection(registry.url) as connection:
        head = early_head(connection, early, 2 * KiB).replace(
            b"Content-Length: 2048", b"Transfer-Encoding: chunked"
        )
        chunk = b"x" * KiB
        connection.send(head + (b"400\r\n" + chunk + b"\r\n") * 2 + b"0\r\n\r\n")
        answer = connection.response()
        assert answer.status == early.status, answer
        assert not answer.closes, answer
        assert connection.request("GET", "/v2/").status == 200


@pytest.mark.parametrize("size", [2 * KiB, 3 * MiB], ids=["small", "large"])
@pytest.mark.parametrize("early", EARLY, ids=lambda early: early.label)
def test_body_held_back_until_the_answer(registry: MirrorProcess, early: Early, size: int) -> None:
    """A client that waits for the answer before it sends its body (a loaded machine
    where the server answers first): the connection is closed or stays in step."""
    first = min(size // 2, 64 * KiB)
    with RawConnection(registry.url) as connection:
        connection.send(early_head(connection, early, size) + b"x" * first)
        answer = connection.response()
        assert answer.status == early.status, answer
        if not answer.closes:
            connection.send(b"x" * (size - first))
        assert_usable_or_closed(connection, answer)


def test_an_early_answer_to_expect_continue_closes(registry: MirrorProcess) -> None:
    """A client waiting for "100 Continue" sends no body after a final answer; the server
    must not wait for one or ask for it, and may not read the next request from it."""
    with RawConnection(registry.url) as connection:
        target = "/v2/early/blobs/uploads/no-such-upload"
        headers = {"Content-Length": str(MiB), "Expect": "100-continue"}
        connection.send(connection.head("PATCH", target, headers))
        answer = connection.response()
        assert answer.status == 404, answer
        assert_usable_or_closed(connection, answer)
