"""ConfigError: a configuration problem in one line naming the key path (and variable)."""

from __future__ import annotations

import re
from collections.abc import Mapping

from mirror.settings import Problem, format_path

_PATH_STEP = re.compile(r"\.[^.\[]+|\[\d+\]")


class ConfigError(ValueError):
    """A configuration problem, described in one line that names the key path."""


def origin_of(path: str, origins: Mapping[str, str]) -> str | None:
    """The environment variable that set `path` or the section holding it, if one did."""
    while path:
        if path in origins:
            return origins[path]
        steps = _PATH_STEP.findall(path)
        if not steps:
            return None
        path = path[: len(path) - len(steps[-1])]
    return None


def config_error(problem: Problem, origins: Mapping[str, str]) -> ConfigError:
    """`problem` (located from the document's root) as the operator reads it."""
    path = format_path(problem.at)
    variable = origin_of(path, origins)
    if problem.unknown_key:
        if variable:
            return ConfigError(f"{variable}: no configuration key {path}")
        return ConfigError(f"{path}: unknown key")
    return ConfigError(f"{path}: {problem.message}" + (f" (from {variable})" if variable else ""))
