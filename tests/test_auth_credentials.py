"""Authorization header parsing: every malformed header is one error type, never another."""

from __future__ import annotations

import base64

import pytest

from mirror.auth.credentials import (
    MAX_AUTHORIZATION_LENGTH,
    BasicCredentials,
    MalformedCredentials,
    parse_basic,
    parse_bearer,
)


def basic(raw: bytes) -> str:
    return "Basic " + base64.b64encode(raw).decode()


@pytest.mark.parametrize(
    ("header", "user", "password"),
    [
        (basic(b"alice:secret"), "alice", "secret"),
        (basic(b"alice:"), "alice", ""),
        (basic(b"alice:a:b:c"), "alice", "a:b:c"),
        (basic("jörg:pässwörd".encode()), "jörg", "pässwörd"),
        ("basic " + base64.b64encode(b"a:b").decode(), "a", "b"),
        ("BASIC   " + base64.b64encode(b"a:b").decode() + "  ", "a", "b"),
    ],
)
def test_basic(header: str, user: str, password: str) -> None:
    assert parse_basic(header) == BasicCredentials(user, password)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "Basic",
        "Basic ",
        "Bearer " + base64.b64encode(b"a:b").decode(),
        "Basic !!!!",
        "Basic YWxpY2U6c2VjcmV0",  # fine base64 ...
        "Basic YWxpY2U",  # bad padding
        "Basic YWxp Y2U6",
        basic(b"alice"),  # no colon
        basic(b":password"),  # empty user
        basic(b"\xff\xfe:x"),  # not UTF-8
        basic(b"al\x00ice:x"),
        basic(b"al\nice:x"),
        "Basic " + "QUFB" * (MAX_AUTHORIZATION_LENGTH // 4),
        "Basic " + "A" * 65536,
    ],
)
def test_basic_malformed(header: str) -> None:
    if header == "Basic YWxpY2U6c2VjcmV0":
        assert parse_basic(header).username == "alice"
        return
    with pytest.raises(MalformedCredentials):
        parse_basic(header)


def test_a_password_never_shows_in_a_repr() -> None:
    assert "secret" not in repr(parse_basic(basic(b"alice:secret")))


@pytest.mark.parametrize(
    "header", ["Bearer abc.def.ghi", "bearer abc", "Bearer a-b_c~d+e/f==", "BEARER  x "]
)
def test_bearer(header: str) -> None:
    assert parse_bearer(header) == header.rsplit(maxsplit=1)[-1]


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer ",
        "Basic abc",
        "Bearer a b",
        "Bearer a,b",
        'Bearer "abc"',
        "Bearer abc\x00",
        "Bearer é",
        "Bearer =abc",
        "Bearer " + "a" * 65536,
        "Token abc",
    ],
)
def test_bearer_malformed(header: str) -> None:
    with pytest.raises(MalformedCredentials):
        parse_bearer(header)
