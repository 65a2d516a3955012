"""The access policy: the shared decisions on the policy itself, presets, reloads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mirror.auth.access import Access
from mirror.auth.policy import AccessPolicy
from mirror.auth.policyfile import PolicyFile, parse_policy_yaml
from tests.auth_decisions import POLICY, decision_params


@pytest.mark.parametrize(("user", "access", "allowed"), decision_params())
def test_policy_decides(user: str | None, access: Access, allowed: bool) -> None:
    assert parse_policy_yaml(POLICY.encode()).allows(user, access) is allowed


def test_groups_of_a_user() -> None:
    policy = parse_policy_yaml(POLICY.encode())
    assert policy.groups_of("alice") == {"team-a"}
    assert policy.groups_of("dave") == frozenset()
    assert policy.groups_of(None) == frozenset()


def test_missing_lists_what_is_not_allowed_in_order() -> None:
    policy = parse_policy_yaml(POLICY.encode())
    wanted = [Access("repository", "other/x", a) for a in ("pull", "push", "delete")]
    assert policy.missing("carol", wanted) == wanted[1:]


@pytest.mark.parametrize(
    ("user", "access", "allowed"),
    [
        ("anyone", Access("repository", "a/b/c", "delete"), True),
        ("anyone", Access("registry", "catalog", "*"), True),
        (None, Access("repository", "a", "pull"), False),
        (None, Access("registry", "catalog", "*"), False),
    ],
)
def test_without_a_policy_any_valid_user_may_do_everything(
    user: str | None, access: Access, allowed: bool
) -> None:
    assert AccessPolicy.any_authenticated().allows(user, access) is allowed


@pytest.mark.parametrize(
    ("user", "name", "action", "allowed"),
    [
        (None, "docker.io/library/alpine", "pull", True),
        (None, "ghcr.io/org/tool", "pull", True),
        (None, "docker.io/library/alpine", "push", False),
        (None, "local/app", "pull", False),
        (None, "local/app", "push", False),
        ("alice", "local/app", "push", True),
        ("alice", "local/app", "delete", True),
        ("alice", "docker.io/library/alpine", "pull", True),
        # Allowed here; the pull-through view refuses it (DENIED), whoever asks.
        ("alice", "docker.io/library/alpine", "push", True),
        ("alice", "quay.io/x", "pull", True),  # not an upstream: a local name
    ],
)
def test_mirror_default(user: str | None, name: str, action: str, allowed: bool) -> None:
    policy = AccessPolicy.mirror_default(["docker.io", "ghcr.io"])
    assert policy.allows(user, Access("repository", name, action)) is allowed


def test_policy_file_is_reread_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "policy.yml"
    path.write_text("rules: [{repository: a, allow: {user:x: [pull]}}]\n")
    source = PolicyFile(path)
    access = Access("repository", "a", "push")
    assert not source.current().allows("x", access)
    path.write_text("rules: [{repository: a, allow: {user:x: [pull, push]}}]\n")
    assert source.current().allows("x", access)


def test_a_broken_edit_keeps_the_last_good_policy(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "policy.yml"
    path.write_text("rules: [{repository: a, allow: {user:x: [pull]}}]\n")
    source = PolicyFile(path)
    path.write_text("rules: [{repository: a, allow: {user:x: [pul]}}]\n")
    access = Access("repository", "a", "pull")
    assert source.current().allows("x", access)
    assert "unknown action 'pul'" in caplog.text
    os.unlink(path)
    assert source.current().allows("x", access)


def test_a_policy_file_that_cannot_be_read_stops_start_up(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot be read"):
        PolicyFile(tmp_path / "missing.yml")
    (tmp_path / "bad.yml").write_text("rules: [\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        PolicyFile(tmp_path / "bad.yml")
