"""What each request needs (registry:2's rules), the scope grammar, the challenge header."""

from __future__ import annotations

import pytest

from mirror.auth.access import Access, AuthRequest, scope_param
from mirror.auth.challenge import Challenge, auth_params, quoted
from mirror.auth.requirements import required_accesses
from mirror.auth.scope import ResourceScope, parse_scope, parse_scopes, valid_name


def repo(name: str, *actions: str) -> tuple[Access, ...]:
    return tuple(Access("repository", name, action) for action in actions)


@pytest.mark.parametrize(
    ("method", "needed"),
    [
        ("GET", ("pull",)),
        ("HEAD", ("pull",)),
        ("POST", ("pull", "push")),
        ("PUT", ("pull", "push")),
        ("PATCH", ("pull", "push")),
        ("DELETE", ("delete",)),
        ("get", ("pull",)),
        ("OPTIONS", ("pull", "push", "delete")),
    ],
)
def test_repository_routes(method: str, needed: tuple[str, ...]) -> None:
    assert required_accesses(method, "repository", "team/app") == repo("team/app", *needed)


def test_a_mount_also_needs_pull_on_its_source() -> None:
    assert required_accesses("POST", "repository", "b", mount_from="a") == (
        *repo("b", "pull", "push"),
        *repo("a", "pull"),
    )
    assert required_accesses("POST", "repository", "b", mount_from="b") == repo("b", "pull", "push")


def test_catalog_and_base() -> None:
    assert required_accesses("GET", "catalog") == (Access("registry", "catalog", "*"),)
    assert required_accesses("GET", "base") == ()


def test_a_repository_route_without_a_name_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="repository name"):
        required_accesses("GET", "repository", "")


def test_scope_param_groups_actions_by_resource_in_order() -> None:
    accesses = [*repo("b", "pull", "push"), *repo("a", "pull"), *repo("b", "pull")]
    assert scope_param(accesses) == "repository:b:pull,push repository:a:pull"
    assert scope_param([]) == ""


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("repository:samalba/my-app:pull,push", ("repository", "samalba/my-app", ("pull", "push"))),
        ("repository:localhost:5000/a/b:pull", ("repository", "localhost:5000/a/b", ("pull",))),
        ("repository:Reg.Example.COM:80/a:pull", ("repository", "Reg.Example.COM:80/a", ("pull",))),
        ("registry:catalog:*", ("registry", "catalog", ("*",))),
        ("repository:a:pull,,pull,push", ("repository", "a", ("pull", "push"))),
        ("repository:a:", ("repository", "a", ())),
        ("repository:a__b.c-d---e/f:pull", ("repository", "a__b.c-d---e/f", ("pull",))),
    ],
)
def test_scopes_parsed(text: str, parsed: tuple[str, str, tuple[str, ...]]) -> None:
    scope = parse_scope(text)
    assert scope is not None
    assert (scope.type, scope.name, scope.actions) == parsed


def test_resource_class_is_kept_apart() -> None:
    assert parse_scope("repository(plugin):a/b:pull") == ResourceScope(
        "repository", "a/b", ("pull",), "plugin"
    )
    text = "repository(plugin):a/b:pull,push"
    assert str(parse_scope(text)) == text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "repository",
        "repository:a",
        ":a:pull",
        "Repository:a:pull",
        "repo sitory:a:pull",
        "repository(:a:pull",
        "repository(x)(y):a:pull",
        "repository:a/B:pull",
        "repository:A:pull",
        "repository:a//b:pull",
        "repository:/a:pull",
        "repository:a/:pull",
        "repository:a:PULL",
        "repository:a:pu-ll",
        "repository:a;rm -rf:pull",
        'repository:a"b:pull',
        "repository:a\r\nb:pull",
        "repository:é:pull",
        "repository:a_-b:pull",
        "repository:" + "a" * 256 + ":pull",
        "repository:a:" + "pull," * 300,
        "repository:-a:pull",
        "repository:host:port:a:pull",
    ],
)
def test_malformed_scopes_are_dropped(text: str) -> None:
    assert parse_scope(text) is None


def test_parse_scopes_splits_spaces_and_drops_the_bad() -> None:
    scopes = parse_scopes(["repository:a:pull repository:b:push", "junk", "", "registry:catalog:*"])
    assert [str(s) for s in scopes] == [
        "repository:a:pull",
        "repository:b:push",
        "registry:catalog:*",
    ]


def test_the_regex_has_no_catastrophic_backtracking() -> None:
    # Exponential on the scope document's literal grammar; must stay instant here.
    assert not valid_name("a" * 200 + "!")
    assert not valid_name("a-" * 100 + "!")


def test_quoted_escapes_and_never_breaks_a_header() -> None:
    assert quoted('a"b\\c') == '"a\\"b\\\\c"'
    assert quoted("a\r\nb\x00\x7f") == '"ab"'
    assert quoted("snow☃") == '"snow?"'
    quoted("x" * 10).encode("latin-1")


def test_auth_params_leaves_out_empty_values() -> None:
    assert auth_params("Bearer", [("realm", "r"), ("service", ""), ("scope", "s")]) == (
        'Bearer realm="r",scope="s"'
    )


def test_challenge_is_unauthorized_with_registry2_detail() -> None:
    challenge = Challenge(
        "access denied", www_authenticate='Basic realm="r"', missing=repo("a", "push")
    )
    assert challenge.headers == {"WWW-Authenticate": 'Basic realm="r"'}
    assert challenge.detail == [{"Type": "repository", "Name": "a", "Action": "push"}]
    assert Challenge("x", www_authenticate="Basic").detail is None


def test_auth_request_from_asgi_headers() -> None:
    request = AuthRequest.from_asgi_headers(
        [
            (b"host", b"registry.test:5000"),
            (b"authorization", b"Basic one"),
            (b"Authorization", b"Basic two"),
            (b"x-forwarded-proto", b"http"),
        ]
    )
    assert request == AuthRequest("Basic one, Basic two", "registry.test:5000", "http")
    assert AuthRequest.from_asgi_headers([]).authorization is None
