"""The Host header, as the reference registry checks it: HTTP/1.1 needs one (not empty),
no request may carry two, and its value holds only host and port characters. Real servers
(granian and uvicorn) over raw sockets, since HTTP clients always send one Host."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.support.mirrorproc import MirrorProcess, run_mirror
from tests.support.rawhttp import RawConnection


@pytest.fixture(scope="module", params=["granian", "uvicorn"])
def registry(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MirrorProcess]:
    server = str(request.param)
    with run_mirror(tmp_path_factory.mktemp(server), server=server) as process:
        yield process


@pytest.mark.parametrize(
    ("head", "problem"),
    [
        (b"GET /v2/ HTTP/1.1\r\n", "missing required Host header"),
        # granian reports a missing Host as an empty one; HTTP/1.1 needs the authority.
        (b"GET /v2/ HTTP/1.1\r\nHost: \r\n", "missing required Host header"),
        (b"GET /v2/ HTTP/1.1\r\nHost: a\r\nHost: b\r\n", "more than one Host header"),
        (b"GET /v2/_catalog HTTP/1.0\r\nHost: a\r\nHost: a\r\n", "more than one Host header"),
        (b"GET /metrics HTTP/1.1\r\nHost: a\r\nHost: b\r\n", "more than one Host header"),
        (b"GET /v2/ HTTP/1.1\r\nHost: a/b\r\n", "malformed Host header"),
        (b"GET /v2/ HTTP/1.1\r\nHost: user@host\r\n", "malformed Host header"),
    ],
)
def test_bad_host_headers_are_refused(registry: MirrorProcess, head: bytes, problem: str) -> None:
    with RawConnection(registry.url) as connection:
        connection.send(head + b"\r\n")
        answer = connection.response()
        assert answer.status == 400, answer
        error = json.loads(answer.body)["errors"][0]
        assert error == {"code": "BAD_REQUEST", "message": problem}
        assert answer.closes


@pytest.mark.parametrize(
    "head",
    [
        b"GET /v2/ HTTP/1.0\r\n",
        b"GET /v2/ HTTP/1.0\r\nHost: \r\n",
        b"GET /v2/ HTTP/1.1\r\nHost: [::1]:5000\r\n",
        b"GET /v2/ HTTP/1.1\r\nHost: mirror.internal:5000\r\n",
    ],
)
def test_good_host_headers_are_served(registry: MirrorProcess, head: bytes) -> None:
    with RawConnection(registry.url) as connection:
        connection.send(head + b"\r\n")
        answer = connection.response()
        assert answer.status == 200, answer
