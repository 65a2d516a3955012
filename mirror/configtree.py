"""Reading a configuration document: YAML text, environment overrides, typed key access.

`mirror.config` builds its frozen values with `Section`, which remembers the key path of
everything it reads, so every problem is reported as ONE line naming the key (and the
environment variable, when the value came from one). Keys nobody read are unknown keys.

Environment overrides follow registry:2: `REGISTRY_` + the upper-cased key path joined by
`_`. A variable's text stays raw until the reader knows the key's type: string keys take
it verbatim (so `REGISTRY_HTTP_ADDR=[::1]:5000` and `REGISTRY_PROXY_PASSWORD=0123` mean what
they say), every other key parses it as YAML (`true`, `30s`, `[a, b]`, `{x: 1}`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

import yaml

from mirror.durations import parse_duration

ENV_PREFIX: Final = "REGISTRY_"
# Read by the CLI (registry:2 compatible), not a configuration key.
ENV_CONFIG_PATH: Final = "REGISTRY_CONFIGURATION_PATH"
# Kubernetes injects REGISTRY_SERVICE_HOST, REGISTRY_PORT_5000_TCP, ... for a Service named
# "registry"; no configuration key starts with these segments, so they cannot mean one.
_FOREIGN_HEADS: Final = frozenset({"SERVICE", "PORT"})
_PATH_STEP = re.compile(r"\.[^.\[]+|\[\d+\]")


class ConfigError(ValueError):
    """A configuration problem, described in one line that names the key path."""


@dataclass(frozen=True, slots=True)
class EnvValue:
    """A value set by an environment variable, kept as text until its key's type is known."""

    text: str
    variable: str

    def parsed(self, path: str) -> object:
        try:
            return yaml.safe_load(self.text)
        except yaml.YAMLError:
            raise ConfigError(
                f"{path}: not a valid YAML value: {self.text!r} (from {self.variable})"
            ) from None


_MISSING: Final = object()


def load_yaml(text: str, source: str) -> dict[object, object]:
    """Parse `text` with yaml.safe_load; an empty document is an empty mapping."""
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = " ".join(str(exc.problem or exc.context or "syntax error").split())
        raise ConfigError(f"{source}: invalid YAML{where}: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: invalid YAML: {' '.join(str(exc).split())}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of configuration keys at the top level")
    return data


def _env_names(env: Mapping[str, str]) -> list[str]:
    names = []
    for name in env:
        if not name.startswith(ENV_PREFIX) or name == ENV_CONFIG_PATH:
            continue
        if name[len(ENV_PREFIX) :].split("_")[0] in _FOREIGN_HEADS:
            continue
        names.append(name)
    # Sorted, a parent (REGISTRY_STORAGE) applies before its children (REGISTRY_STORAGE_...).
    return sorted(names)


def _matching_key(node: Mapping[object, object], segment: str) -> object:
    for key in node:
        if str(key).upper() == segment:
            return key
    return segment.lower()


def overlay_env(
    tree: dict[object, object],
    env: Mapping[str, str],
    *,
    driver_section: str,
    settings: frozenset[str],
) -> dict[str, str]:
    """Apply REGISTRY_* variables to `tree` in place; return {key path: variable}.

    Within `driver_section` (storage), any key not in `settings` names a driver. A variable
    naming a driver (REGISTRY_STORAGE_INMEMORY=, REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY=,
    or REGISTRY_STORAGE=inmemory) replaces the file's driver; naming two is an error.
    """
    names = _env_names(env)
    origins: dict[str, str] = {}
    handled = _switch_driver(
        tree,
        env=env,
        names=names,
        section=driver_section,
        settings=settings,
        origins=origins,
    )
    for name in names:
        if name in handled:
            continue
        segments = name[len(ENV_PREFIX) :].split("_")
        if "" in segments:
            raise ConfigError(f"{name}: does not name a configuration key")
        node = tree
        path: list[str] = []
        for index, segment in enumerate(segments):
            key = _matching_key(node, segment)
            path.append(str(key))
            dotted = ".".join(path)
            if index == len(segments) - 1:
                node[key] = EnvValue(env[name], name)
                origins[dotted] = name
                break
            child = node.get(key)
            if isinstance(child, EnvValue):
                child = child.parsed(dotted)
            if child is None:
                child = {}
                origins.setdefault(dotted, name)
            if not isinstance(child, dict):
                raise ConfigError(f"{name}: {dotted} is not a section of keys")
            node[key] = child
            node = child
    return origins


def _switch_driver(
    tree: dict[object, object],
    *,
    env: Mapping[str, str],
    names: Iterable[str],
    section: str,
    settings: frozenset[str],
    origins: dict[str, str],
) -> set[str]:
    chosen: dict[str, str] = {}
    handled: set[str] = set()
    head = section.upper()
    for name in names:
        segments = name[len(ENV_PREFIX) :].split("_")
        if segments[0] != head:
            continue
        if len(segments) == 1:
            value = EnvValue(env[name], name).parsed(section)
            if isinstance(value, str) and value:
                chosen.setdefault(value.lower(), name)
                handled.add(name)
        elif segments[1] and segments[1].lower() not in settings:
            chosen.setdefault(segments[1].lower(), name)
    if len(chosen) > 1:
        variables = ", ".join(sorted(chosen.values()))
        raise ConfigError(f"{variables}: more than one storage driver selected")
    if not chosen:
        return handled
    driver, variable = next(iter(chosen.items()))
    current = tree.get(section)
    block = dict(current) if isinstance(current, dict) else {}
    for key in list(block):
        if str(key).lower() not in settings and str(key).upper() != driver.upper():
            del block[key]
    if not any(str(key).upper() == driver.upper() for key in block):
        block[driver] = None
        origins[f"{section}.{driver}"] = variable
    tree[section] = block
    return handled


class Section:
    """One mapping of the document, read key by key with typed accessors.

    Every accessor marks its key as read; `finish()` raises for any key left unread.
    A key present with a null value counts as absent (its default applies).
    """

    def __init__(self, data: Mapping[object, object], path: str, origins: Mapping[str, str]):
        self.path = path
        self._data = {str(key): value for key, value in data.items()}
        self._origins = origins
        self._read: set[str] = set()

    def key_path(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def _origin(self, path: str) -> str | None:
        while path:
            if path in self._origins:
                return self._origins[path]
            steps = _PATH_STEP.findall(path)
            if not steps:
                return None
            path = path[: len(path) - len(steps[-1])]
        return None

    def error(self, key: str, message: str) -> ConfigError:
        """A ConfigError about `key` of this section (naming its variable if it has one)."""
        path = self.key_path(key) if key else self.path
        variable = self._origin(path)
        return ConfigError(f"{path}: {message}" + (f" (from {variable})" if variable else ""))

    def has(self, key: str) -> bool:
        return self._data.get(key) is not None

    def _take(self, key: str, *, raw_text: bool = False) -> object:
        self._read.add(key)
        value = self._data.get(key)
        if isinstance(value, EnvValue):
            value = value.text if raw_text else value.parsed(self.key_path(key))
        return _MISSING if value is None else value

    def ignore(self, *keys: str) -> None:
        """Accept `keys` with any content, and do nothing with them."""
        self._read.update(keys)

    def value(self, key: str) -> object:
        """The raw value at `key` (YAML-typed), or None when absent."""
        value = self._take(key)
        return None if value is _MISSING else value

    def text(self, key: str, default: str = "") -> str:
        value = self._take(key, raw_text=True)
        if value is _MISSING:
            return default
        if not isinstance(value, str):
            raise self.error(key, f"expected a string, got {value!r} (quote it)")
        return value

    def choice(self, key: str, default: str, allowed: Iterable[str]) -> str:
        value = self.text(key, default).lower()
        options = tuple(allowed)
        if value not in options:
            raise self.error(key, f"expected one of {', '.join(options)}, got {value!r}")
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self._take(key)
        if value is _MISSING:
            return default
        if not isinstance(value, bool):
            raise self.error(key, f"expected true or false, got {value!r}")
        return value

    def integer(self, key: str, default: int, *, minimum: int = 0) -> int:
        value = self._take(key)
        if value is _MISSING:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"expected an integer, got {value!r}")
        if value < minimum:
            raise self.error(key, f"must be at least {minimum}, got {value}")
        return value

    def duration(self, key: str, default: float, *, positive: bool = False) -> float:
        found = self.optional_duration(key)
        if found is None:
            return default
        if positive and found <= 0:
            raise self.error(key, "must be longer than zero")
        return found

    def optional_duration(self, key: str) -> float | None:
        value = self._take(key)
        if value is _MISSING:
            return None
        try:
            return parse_duration(value)
        except ValueError:
            raise self.error(
                key, f"expected a duration like 30s, 5m, 1h30m or 168h, got {value!r}"
            ) from None

    def texts(self, key: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        """A list of strings; a single string is a list of one."""
        value = self._take(key)
        if value is _MISSING:
            return default
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            raise self.error(key, f"expected a list of strings, got {value!r}")
        return tuple(items)

    def section(self, key: str) -> Section | None:
        """The mapping at `key` (empty for a null value), or None when the key is absent."""
        present = key in self._data
        value = self._take(key)
        if value is _MISSING:
            return Section({}, self.key_path(key), self._origins) if present else None
        if not isinstance(value, dict):
            raise self.error(key, f"expected a mapping of keys, got {value!r}")
        return Section(value, self.key_path(key), self._origins)

    def child(self, key: str) -> Section:
        """The mapping at `key`, empty when the key is absent."""
        return self.section(key) or Section({}, self.key_path(key), self._origins)

    def sections(self, key: str) -> list[Section]:
        """The list of mappings at `key` (empty when absent)."""
        value = self._take(key)
        if value is _MISSING:
            return []
        if not isinstance(value, list):
            raise self.error(key, f"expected a list, got {value!r}")
        found = []
        for index, item in enumerate(value):
            path = f"{self.key_path(key)}[{index}]"
            if not isinstance(item, dict):
                raise Section({}, path, self._origins).error("", "expected a mapping of keys")
            found.append(Section(item, path, self._origins))
        return found

    def names(self) -> list[str]:
        """Every key of this section, all marked read (for free-form maps like headers)."""
        self._read.update(self._data)
        return list(self._data)

    def finish(self) -> None:
        """Raise ConfigError for the first key no accessor read."""
        for key in self._data:
            if key in self._read:
                continue
            path = self.key_path(key)
            variable = self._origin(path)
            if variable:
                raise ConfigError(f"{variable}: no configuration key {path}")
            raise ConfigError(f"{path}: unknown key")
