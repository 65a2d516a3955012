"""The token spec's scope grammar (`type[(class)]:name:action[,action]*`), parsed strictly.

A resource name may hold one `:` (a port in its leading host component), so the type is
what comes before the first colon and the actions what follows the last one. Anything
that does not fit the grammar is dropped, never raised: the token service ignores a
malformed scope rather than failing the request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mirror.auth.access import ANY_ACTION, Access

# distribution/reference: the separator is `[._]|__|-+` (the scope document's `[-]*`
# would make the grammar ambiguous, and the regex exponential).
_HOST_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOSTNAME = rf"{_HOST_COMPONENT}(?:\.{_HOST_COMPONENT})*(?::[0-9]+)?"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
NAME = re.compile(rf"(?:{_HOSTNAME}/)?{_COMPONENT}(?:/{_COMPONENT})*")
_TYPE = re.compile(r"(?P<type>[a-z0-9]+)(?:\((?P<class>[a-z0-9]+)\))?")
_ACTION = re.compile(r"[a-z]*")
# distribution's limit on a repository name; a scope is at most a little more.
MAX_NAME_LENGTH = 255
MAX_SCOPE_LENGTH = 1024


@dataclass(frozen=True, slots=True)
class ResourceScope:
    """One parsed resource scope. `resource_class` is deprecated and ignored by checks."""

    type: str
    name: str
    actions: tuple[str, ...]
    resource_class: str | None = None

    def accesses(self) -> tuple[Access, ...]:
        return tuple(Access(self.type, self.name, action) for action in self.actions)

    def __str__(self) -> str:
        kind = f"{self.type}({self.resource_class})" if self.resource_class else self.type
        return f"{kind}:{self.name}:{','.join(self.actions)}"


def valid_name(name: str) -> bool:
    """True when `name` is a repository name the reference grammar accepts."""
    return 0 < len(name) <= MAX_NAME_LENGTH and NAME.fullmatch(name) is not None


def parse_scope(text: str) -> ResourceScope | None:
    """One `resourcescope`, or None when it does not fit the grammar.

    Actions are kept in order without repeats; empty actions (`pull,,push`) are dropped.
    `*` is accepted as an action (registry:2 asks for `registry:catalog:*`).
    """
    if len(text) > MAX_SCOPE_LENGTH:
        return None
    kind, sep, rest = text.partition(":")
    name, sep2, actions_text = rest.rpartition(":")
    if not sep or not sep2:
        return None
    type_match = _TYPE.fullmatch(kind)
    if type_match is None or not valid_name(name):
        return None
    actions: list[str] = []
    for action in actions_text.split(","):
        if action != ANY_ACTION and _ACTION.fullmatch(action) is None:
            return None
        if action and action not in actions:
            actions.append(action)
    return ResourceScope(type_match["type"], name, tuple(actions), type_match["class"])


def parse_scopes(values: list[str] | tuple[str, ...]) -> list[ResourceScope]:
    """Every well-formed scope in `values`; each value may hold several, space-separated."""
    found: list[ResourceScope] = []
    for value in values:
        for item in value.split(" "):
            scope = parse_scope(item) if item else None
            if scope is not None:
                found.append(scope)
    return found
