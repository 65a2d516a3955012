"""One suite of access decisions, run against every part that decides access.

Each decider answers "may USER (None: anonymous) have ACCESS?" under `POLICY`: the
policy object itself, the htpasswd controller that applies it, and the built-in token
service whose tokens the token controller then checks. They must all agree with
`DECISIONS`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from mirror.auth.access import Access

Decider = Callable[[str | None, Access], Awaitable[bool]]

POLICY = """
groups:
  team-a: [alice, bob]
  ops: [olga]
catalog: [group:ops]
rules:
  - repository: "**"
    allow: {authenticated: [pull]}
  - repository: team-a/**
    allow:
      group:team-a: [pull, push]
      user:carol: [pull]
  - repository: team-a/secret
    allow: {user:alice: [pull, push, delete]}
  - repository: team-a/public-*
    allow: {anonymous: [pull], group:team-a: [pull, push]}
  - repository: docker.io/**
    allow: {anonymous: [pull]}
  - repository: ops/**
    allow: {group:ops: ["*"]}
  - repository: [scratch/*, tmp/*]
    allow: {authenticated: [pull, push, delete]}
  - repository: x*/y
    allow: {user:alice: [pull]}
  - repository: "*x/y"
    allow: {user:bob: [pull]}
  - repository: closed/**
    allow: {}
"""
USERS = ("alice", "bob", "carol", "olga", "dave")


def repo(name: str, action: str) -> Access:
    return Access("repository", name, action)


CATALOG = Access("registry", "catalog", "*")

# (user, access, allowed, why)
DECISIONS: list[tuple[str | None, Access, bool, str]] = [
    ("alice", repo("team-a/app", "pull"), True, "group rule"),
    ("alice", repo("team-a/app", "push"), True, "group rule"),
    ("alice", repo("team-a/app", "delete"), False, "action not listed"),
    ("bob", repo("team-a/deep/app", "push"), True, "** spans components"),
    ("bob", repo("team-a", "push"), True, "** matches no component"),
    ("bob", repo("team-a/secret", "pull"), False, "most specific rule only, never merged"),
    ("alice", repo("team-a/secret", "delete"), True, "exact name beats globs"),
    ("carol", repo("team-a/app", "pull"), True, "user rule"),
    ("carol", repo("team-a/app", "push"), False, "user rule is pull only"),
    ("carol", repo("other/thing", "pull"), True, "authenticated on **"),
    ("carol", repo("other/thing", "push"), False, "authenticated may only pull"),
    (None, repo("other/thing", "pull"), False, "anonymous is not authenticated"),
    (None, repo("team-a/public-web", "pull"), True, "anonymous rule"),
    (None, repo("team-a/public-web", "push"), False, "anonymous may only pull"),
    ("bob", repo("team-a/public-web", "push"), True, "group entry of the same rule"),
    ("carol", repo("team-a/public-web", "pull"), True, "anonymous applies to users too"),
    ("carol", repo("team-a/public-web", "push"), False, "public-* rule, not team-a/**"),
    (None, repo("docker.io/library/alpine", "pull"), True, "cached upstream content"),
    ("alice", repo("docker.io/library/alpine", "push"), False, "upstream rule is pull"),
    ("olga", repo("ops/x", "delete"), True, "* is every action"),
    ("olga", repo("ops/x/y", "push"), True, "* is every action"),
    ("alice", repo("ops/x", "pull"), False, "ops/** beats ** and alice is not in ops"),
    ("olga", CATALOG, True, "catalog principal"),
    ("alice", CATALOG, False, "not a catalog principal"),
    (None, CATALOG, False, "anonymous may not list"),
    ("dave", repo("scratch/one", "push"), True, "list of patterns"),
    ("dave", repo("tmp/one", "delete"), True, "list of patterns"),
    ("dave", repo("scratch/one/two", "pull"), True, "* stays in one component: ** rule"),
    ("dave", repo("scratch/one/two", "push"), False, "* stays in one component: ** rule"),
    ("alice", repo("xx/y", "pull"), True, "tie: first listed wins"),
    ("bob", repo("xx/y", "pull"), False, "tie: first listed wins"),
    ("bob", repo("ax/y", "pull"), True, "only *x/y matches"),
    ("alice", repo("closed/box", "pull"), False, "an empty rule closes a sub-tree"),
    ("alice", Access("repository", "team-a/app", "*"), False, "asking * needs a grant of *"),
    ("olga", Access("repository", "ops/app", "*"), True, "a grant of * covers *"),
    ("alice", Access("widget", "team-a/app", "pull"), False, "unknown resource type"),
    ("alice", Access("registry", "other", "*"), False, "only the catalog is a registry"),
]


def decision_params() -> list[object]:
    return [
        pytest.param(user, access, allowed, id=f"{user or 'anonymous'}-{access.scope}-{why}")
        for user, access, allowed, why in DECISIONS
    ]
