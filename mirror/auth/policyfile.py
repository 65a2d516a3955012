"""Building an `AccessPolicy` from plain data (the config's block or a YAML file).

```yaml
groups:
  team-a: [alice, bob]
catalog: [authenticated]          # who may list /v2/_catalog (default: nobody)
rules:
  - repository: "**"              # a pattern, or a list of patterns
    allow: {authenticated: [pull]}
  - repository: "team-a/**"
    allow:
      group:team-a: [pull, push, delete]
      user:carol: [pull]
  - repository: docker.io/**
    allow: {anonymous: [pull]}
```

Everything is checked: unknown keys, unknown principals, groups that are not defined,
actions other than pull/push/delete/`*`, invalid or repeated patterns, and (in files)
repeated mapping keys are a `PolicyError` naming where. A policy file is re-read when it
changes; an edit that does not parse is logged and the last good policy stays in force.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping
from typing import Any

import yaml

from mirror.auth.access import ANY_ACTION, REPOSITORY_ACTIONS
from mirror.auth.patterns import PatternError, RepositoryPattern
from mirror.auth.policy import (
    ANONYMOUS,
    AUTHENTICATED,
    GROUP_PREFIX,
    USER_PREFIX,
    AccessPolicy,
    Rule,
)
from mirror.auth.watched import WatchedFile

_ACTIONS = REPOSITORY_ACTIONS | {ANY_ACTION}
_TOP_KEYS = frozenset({"groups", "catalog", "rules"})
_RULE_KEYS = frozenset({"repository", "allow"})


class PolicyError(ValueError):
    """The policy is not valid; the message names the place and the problem."""


def parse_policy(data: object) -> AccessPolicy:
    """The policy described by `data` (a mapping as in the module docstring)."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise PolicyError("policy: expected a mapping with groups, catalog and rules")
    _no_unknown_keys(data, _TOP_KEYS, "policy")
    groups = _groups(data.get("groups"))
    catalog = _principals(data.get("catalog") or [], groups, "policy catalog")
    rules: list[Rule] = []
    seen: dict[str, str] = {}
    raw_rules = data.get("rules") or []
    if not isinstance(raw_rules, list):
        raise PolicyError("policy rules: expected a list")
    for index, raw in enumerate(raw_rules):
        where = f"policy rules[{index}]"
        if not isinstance(raw, Mapping):
            raise PolicyError(f"{where}: expected a mapping with repository and allow")
        _no_unknown_keys(raw, _RULE_KEYS, where)
        allow = _allow(raw.get("allow"), groups, f"{where}.allow")
        for text in _patterns(raw.get("repository"), where):
            if text in seen:
                raise PolicyError(f"{where}: pattern {text!r} already used in {seen[text]}")
            seen[text] = where
            try:
                pattern = RepositoryPattern.parse(text)
            except PatternError as exc:
                raise PolicyError(f"{where}: {exc}") from None
            rules.append(Rule(pattern, allow, len(rules)))
    return AccessPolicy(rules, groups, catalog)


def parse_policy_yaml(content: bytes) -> AccessPolicy:
    """Parse a policy file's bytes; PolicyError for bad YAML or a bad policy."""
    try:
        data = yaml.load(content, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise PolicyError(f"not valid YAML: {exc}") from None
    return parse_policy(data)


class PolicyFile:
    """A policy read from a YAML file, re-read when the file changes.

    The constructor reads it once and raises PolicyError when it cannot: a registry must
    not start with a policy it cannot apply. Later a broken edit keeps the last good
    policy in force (logged).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._file = WatchedFile(path, parse_policy_yaml, _keep_previous, what="access policy")
        self._file.load()

    @property
    def path(self) -> str:
        return str(self._file.path)

    def current(self) -> AccessPolicy:
        return self._file.load()


def _keep_previous(error: str, previous: AccessPolicy | None) -> AccessPolicy:
    if previous is None:  # the first read, in the constructor
        raise PolicyError(error)
    return previous


def _no_unknown_keys(data: Mapping[Any, Any], known: frozenset[str], where: str) -> None:
    for key in data:
        if key not in known:
            raise PolicyError(f"{where}: unknown key {key!r} (known: {', '.join(sorted(known))})")


def _groups(raw: object) -> dict[str, frozenset[str]]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise PolicyError("policy groups: expected a mapping of group name to user names")
    groups: dict[str, frozenset[str]] = {}
    for name, members in raw.items():
        where = f"policy groups.{name}"
        if not isinstance(name, str) or not name or ":" in name:
            raise PolicyError(f"{where}: a group name is a non-empty string without ':'")
        if not isinstance(members, list) or not all(
            isinstance(member, str) and member for member in members
        ):
            raise PolicyError(f"{where}: expected a list of user names")
        groups[name] = frozenset(members)
    return groups


def _principals(raw: object, groups: Mapping[str, frozenset[str]], where: str) -> list[str]:
    if not isinstance(raw, list):
        raise PolicyError(f"{where}: expected a list of principals")
    return [_principal(item, groups, where) for item in raw]


def _principal(item: object, groups: Mapping[str, frozenset[str]], where: str) -> str:
    if not isinstance(item, str):
        raise PolicyError(f"{where}: a principal is a string, got {item!r}")
    if item in (ANONYMOUS, AUTHENTICATED):
        return item
    if item.startswith(USER_PREFIX) and len(item) > len(USER_PREFIX):
        return item
    if item.startswith(GROUP_PREFIX):
        group = item[len(GROUP_PREFIX) :]
        if group not in groups:
            raise PolicyError(f"{where}: group {group!r} is not defined in policy groups")
        return item
    raise PolicyError(
        f"{where}: unknown principal {item!r} (anonymous, authenticated, user:NAME, group:NAME)"
    )


def _allow(
    raw: object, groups: Mapping[str, frozenset[str]], where: str
) -> dict[str, frozenset[str]]:
    if not isinstance(raw, Mapping):
        raise PolicyError(f"{where}: expected a mapping of principal to actions")
    allow: dict[str, frozenset[str]] = {}
    for key, actions in raw.items():
        principal = _principal(key, groups, where)
        if not isinstance(actions, list) or not all(isinstance(a, str) for a in actions):
            raise PolicyError(f"{where}.{principal}: expected a list of actions")
        unknown = sorted(set(actions) - _ACTIONS)
        if unknown:
            raise PolicyError(
                f"{where}.{principal}: unknown action {unknown[0]!r} (pull, push, delete, *)"
            )
        allow[principal] = frozenset(actions)
    return allow


def _patterns(raw: object, where: str) -> list[str]:
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list) and raw and all(isinstance(item, str) for item in raw):
        return list(raw)
    raise PolicyError(f"{where}.repository: expected a pattern or a list of patterns")


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a mapping key given twice (PyYAML keeps the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, Hashable) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} given twice", key_node.start_mark
                )
            if isinstance(key, Hashable):
                seen.add(key)
        return super().construct_mapping(node, deep=deep)
