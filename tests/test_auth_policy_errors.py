"""Policies that are refused, each with a message naming where and what."""

from __future__ import annotations

import pytest

from mirror.auth.patterns import RepositoryPattern
from mirror.auth.policyfile import PolicyError, parse_policy, parse_policy_yaml


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2]", "expected a mapping"),
        ("rulez: []", "unknown key 'rulez'"),
        ("rules: {a: b}", "rules: expected a list"),
        ("rules: [a]", r"rules\[0\]: expected a mapping"),
        ("rules: [{repository: a, allow: {}, deny: {}}]", r"rules\[0\]: unknown key 'deny'"),
        ("rules: [{repository: a, allow: {alice: [pull]}}]", "unknown principal 'alice'"),
        ("rules: [{repository: a, allow: {group:x: [pull]}}]", "group 'x' is not defined"),
        ("rules: [{repository: a, allow: {anonymous: [read]}}]", "unknown action 'read'"),
        ("rules: [{repository: a, allow: {anonymous: pull}}]", "expected a list of actions"),
        ("rules: [{repository: a, allow: [anonymous]}]", "expected a mapping of principal"),
        ("rules: [{allow: {anonymous: [pull]}}]", "expected a pattern or a list"),
        ("rules: [{repository: [], allow: {}}]", "expected a pattern or a list"),
        ("rules: [{repository: 'A/b', allow: {}}]", "invalid component 'A'"),
        ("rules: [{repository: 'a//b', allow: {}}]", "invalid component ''"),
        ("rules: [{repository: 'a/b**', allow: {}}]", "must be a whole component"),
        ("rules: [{repository: 'a b', allow: {}}]", "invalid component"),
        ("rules: [{repository: a, allow: {}}, {repository: a, allow: {}}]", "already used"),
        ("groups: [a]", "groups: expected a mapping"),
        ("groups: {g: alice}", "expected a list of user names"),
        ("groups: {'a:b': [x]}", "without ':'"),
        ("catalog: authenticated", "catalog: expected a list"),
        ("catalog: [someone]", "unknown principal 'someone'"),
        ("catalog: ['user:']", "unknown principal 'user:'"),
        ("rules: [\n", "not valid YAML"),
        ("rules: []\nrules: []\n", "given twice"),
        ("rules: [{repository: a, allow: {anonymous: [pull], anonymous: [push]}}]", "twice"),
    ],
)
def test_refused(text: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        parse_policy_yaml(text.encode())


def test_an_empty_policy_allows_nothing() -> None:
    policy = parse_policy(None)
    assert policy.rules == ()
    assert policy.actions("alice", "repository", "a") == frozenset()


@pytest.mark.parametrize(
    ("more", "less"),
    [
        ("team-a/app", "team-a/*"),
        ("team-a/app", "team-a/app*"),
        ("team-a/app-*", "team-a/**"),
        ("team-a/*", "team-a/**"),
        ("docker.io/**", "**"),
        ("a/b/**", "a/**"),
        ("*/app", "**/app"),
    ],
)
def test_specificity_order(more: str, less: str) -> None:
    assert RepositoryPattern.parse(more).specificity > RepositoryPattern.parse(less).specificity


@pytest.mark.parametrize(
    ("pattern", "name", "matches"),
    [
        ("team-a/**", "team-a", True),
        ("team-a/**", "team-ab", False),
        ("**/app", "app", True),
        ("**/app", "a/b/app", True),
        ("**/app", "a/bapp", False),
        ("a/**/b", "a/b", True),
        ("a/**/b", "a/x/y/b", True),
        ("a/**/**/b", "a/x/b", True),
        ("*", "a/b", False),
        ("team-*", "team-", True),
        ("localhost:5000/*", "localhost:5000/app", True),
        ("a.b", "axb", False),  # '.' is literal, not a regex wildcard
    ],
)
def test_matching(pattern: str, name: str, matches: bool) -> None:
    assert RepositoryPattern.parse(pattern).matches(name) is matches
