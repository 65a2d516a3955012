"""Repository patterns of the access policy, and how specific each one is.

A pattern is a repository name whose components may be globs:

- `*` matches any run of characters inside one component (`team-*`, `*`, `app-*-dev`);
- `**` as a whole component matches any number of components, none included, so
  `team-a/**` matches `team-a`, `team-a/app` and `team-a/x/y`, and `**` matches every name;
- everything else is literal: lower-case letters, digits, `.`, `_`, `-`, and `:` (for a
  `host:port` component).

Specificity, compared in this order (the first difference decides):

1. more literal characters (everything but `*` and `/`) is more specific;
2. fewer `**` components is more specific;
3. fewer `*` wildcards (outside `**`) is more specific;
4. otherwise the pattern listed first wins.

So an exact name beats every glob that matches it, `team-a/app-*` beats `team-a/**`,
`team-a/*` beats `team-a/**`, and `docker.io/**` beats `**`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_COMPONENT = re.compile(r"[a-z0-9._:*-]+")
GLOBSTAR = "**"


class PatternError(ValueError):
    """The pattern is not valid; the message says why."""


@dataclass(frozen=True, slots=True)
class RepositoryPattern:
    text: str
    regex: re.Pattern[str]
    literal: int
    globstars: int
    stars: int

    @classmethod
    def parse(cls, text: str) -> RepositoryPattern:
        """Compile `text`; PatternError when it is empty or has an invalid component."""
        if not isinstance(text, str) or not text:
            raise PatternError("a repository pattern must be a non-empty string")
        components = text.split("/")
        collapsed: list[str] = []
        for component in components:
            if component == GLOBSTAR:
                if collapsed and collapsed[-1] == GLOBSTAR:
                    continue
            elif not _COMPONENT.fullmatch(component):
                raise PatternError(
                    f"invalid component {component!r} in repository pattern {text!r} "
                    "(lower-case letters, digits, '.', '_', '-', ':' and '*')"
                )
            elif GLOBSTAR in component:
                raise PatternError(f"'**' must be a whole component in {text!r}")
            collapsed.append(component)
        return cls(
            text=text,
            regex=re.compile(_regex(collapsed)),
            literal=sum(1 for char in text if char not in "*/"),
            globstars=collapsed.count(GLOBSTAR),
            stars=sum(c.count("*") for c in collapsed if c != GLOBSTAR),
        )

    def matches(self, name: str) -> bool:
        return self.regex.fullmatch(name) is not None

    @property
    def specificity(self) -> tuple[int, int, int]:
        """Larger is more specific (rules 1 to 3 above)."""
        return (self.literal, -self.globstars, -self.stars)


def _regex(components: list[str]) -> str:
    if components == [GLOBSTAR]:
        return r"[^/]+(?:/[^/]+)*"
    parts: list[str] = []
    need_separator = False
    for component in components:
        if component == GLOBSTAR:
            # Zero or more whole components, joined to their neighbours by one '/'.
            parts.append(r"(?:/[^/]+)*" if need_separator else r"(?:[^/]+/)*")
            continue
        if need_separator:
            parts.append("/")
        parts.append("[^/]*".join(re.escape(piece) for piece in component.split("*")))
        need_separator = True
    return "".join(parts)
