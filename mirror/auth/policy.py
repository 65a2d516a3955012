"""The access policy: who may do what, by repository pattern.

A policy is a list of rules, each a repository pattern (see `mirror.auth.patterns`) and
the actions it allows to principals:

- `anonymous`: everyone, logged in or not (what a request without credentials may do);
- `authenticated`: every user with valid credentials;
- `user:NAME`: one user; `group:NAME`: the members of a group the policy defines.

For a repository only the most specific matching rule applies (rules are never merged;
write a more specific rule to take rights away in a sub-tree); a principal's actions are
the union over the entries of that rule that name it. No matching rule: no access. The
catalog (`registry:catalog:*`) is allowed to the principals in `catalog` (nobody unless
listed), as it reveals every repository name. Actions: `pull`, `push`, `delete`, and `*`
for all (only `*` grants a request for `*`).

`AccessPolicy.any_authenticated()` is registry:2's meaning without a policy: every valid
user may do everything, anonymous nothing. `AccessPolicy.mirror_default(upstreams)` lets
anyone pull what comes from the upstreams (names under `<upstream>/`) and requires a login
for everything else; pushes into proxied repositories are refused by the pull-through
view whatever a policy allows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from mirror.auth.access import (
    ANY_ACTION,
    CATALOG,
    DELETE,
    PULL,
    PUSH,
    REGISTRY,
    REPOSITORY,
    REPOSITORY_ACTIONS,
    Access,
)
from mirror.auth.patterns import RepositoryPattern

ANONYMOUS = "anonymous"
AUTHENTICATED = "authenticated"
USER_PREFIX = "user:"
GROUP_PREFIX = "group:"
ALL_ACTIONS = frozenset({ANY_ACTION})
_NAME_CACHE_LIMIT = 4096


@dataclass(frozen=True, slots=True)
class Rule:
    pattern: RepositoryPattern
    allow: Mapping[str, frozenset[str]]
    position: int

    def actions_for(self, principals: Iterable[str]) -> frozenset[str]:
        found: set[str] = set()
        for principal in principals:
            found |= self.allow.get(principal, frozenset())
        return frozenset(found)


def action_allowed(granted: Iterable[str], action: str) -> bool:
    """True when a grant of `granted` actions covers `action` (`*` covers every action)."""
    granted = frozenset(granted)
    return ANY_ACTION in granted or action in granted


class PolicySource(Protocol):
    """Where a controller gets the policy in force (a fixed one, or a watched file)."""

    def current(self) -> AccessPolicy:
        """The policy to apply now; never raises (a broken file keeps the last good one)."""
        ...


class AccessPolicy:
    """Rules, groups and catalog principals; immutable once built."""

    def __init__(
        self,
        rules: Sequence[Rule],
        groups: Mapping[str, frozenset[str]] | None = None,
        catalog: Iterable[str] = (),
    ) -> None:
        self.rules = tuple(rules)
        self.groups = dict(groups or {})
        self.catalog = frozenset(catalog)
        self._member_of: dict[str, frozenset[str]] = {}
        for group, members in self.groups.items():
            for member in members:
                self._member_of[member] = self._member_of.get(member, frozenset()) | {group}
        self._by_name: dict[str, Rule | None] = {}

    def current(self) -> AccessPolicy:
        return self

    @classmethod
    def any_authenticated(cls) -> AccessPolicy:
        """registry:2 without a policy: every valid user may do everything."""
        everything = {AUTHENTICATED: ALL_ACTIONS}
        return cls([Rule(RepositoryPattern.parse("**"), everything, 0)], catalog=[AUTHENTICATED])

    @classmethod
    def mirror_default(cls, upstreams: Iterable[str]) -> AccessPolicy:
        """Anyone may pull `<upstream>/**`; everything else needs a login (and writes into
        a cache are refused by the pull-through view, whoever asks)."""
        rules = [
            Rule(
                RepositoryPattern.parse("**"),
                {AUTHENTICATED: frozenset({PULL, PUSH, DELETE})},
                0,
            )
        ]
        # Logged-in users keep every action there, so that a push into a cache is the
        # pull-through view's 403 DENIED ("a cache"), not a 401 asking to log in again.
        upstream_allow = {
            ANONYMOUS: frozenset({PULL}),
            AUTHENTICATED: frozenset(REPOSITORY_ACTIONS),
        }
        for upstream in upstreams:
            pattern = RepositoryPattern.parse(f"{upstream}/**")
            rules.append(Rule(pattern, upstream_allow, len(rules)))
        return cls(rules, catalog=[AUTHENTICATED])

    def groups_of(self, user: str | None) -> frozenset[str]:
        return frozenset() if user is None else self._member_of.get(user, frozenset())

    def principals(self, user: str | None) -> frozenset[str]:
        """Every principal a request by `user` (None: anonymous) counts as."""
        if user is None:
            return frozenset({ANONYMOUS})
        groups = {GROUP_PREFIX + group for group in self.groups_of(user)}
        return frozenset({ANONYMOUS, AUTHENTICATED, USER_PREFIX + user, *groups})

    def rule_for(self, name: str) -> Rule | None:
        """The most specific rule whose pattern matches repository `name`, if any."""
        if name in self._by_name:
            return self._by_name[name]
        best: Rule | None = None
        for rule in self.rules:
            if not rule.pattern.matches(name):
                continue
            # Strictly greater: on a tie the rule listed first stays.
            if best is None or rule.pattern.specificity > best.pattern.specificity:
                best = rule
        if len(self._by_name) >= _NAME_CACHE_LIMIT:
            self._by_name.clear()
        self._by_name[name] = best
        return best

    def actions(self, user: str | None, resource_type: str, name: str) -> frozenset[str]:
        """The actions `user` may take on the resource (`*` meaning all of them)."""
        principals = self.principals(user)
        if resource_type == REGISTRY:
            return ALL_ACTIONS if name == CATALOG and principals & self.catalog else frozenset()
        if resource_type != REPOSITORY:
            return frozenset()
        rule = self.rule_for(name)
        if rule is None:
            return frozenset()
        granted = rule.actions_for(principals)
        return ALL_ACTIONS if ANY_ACTION in granted else granted & REPOSITORY_ACTIONS

    def allows(self, user: str | None, access: Access) -> bool:
        return action_allowed(self.actions(user, access.type, access.name), access.action)

    def missing(self, user: str | None, accesses: Iterable[Access]) -> list[Access]:
        """The accesses of `accesses` that `user` may not have, in order."""
        return [access for access in accesses if not self.allows(user, access)]
