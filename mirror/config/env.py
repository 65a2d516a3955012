"""registry:2's environment overrides: `REGISTRY_` + the upper-cased key path joined by `_`.

A variable's text stays raw (`RawText`) until its key's declaration says what it is:
text keys take it verbatim (so `REGISTRY_HTTP_ADDR=[::1]:5000` and
`REGISTRY_PROXY_PASSWORD=0123` mean what they say), every other key parses it as YAML
(`true`, `30s`, `[a, b]`, `{x: 1}`). Names match the file's keys case-insensitively; a
variable may create a section, reach into a section another variable set as YAML, or set a
whole list (`REGISTRY_PROXY_UPSTREAMS='[{name: ghcr.io, remoteurl: "https://ghcr.io"}]'`),
but not one list item.

A variable naming a storage driver (`REGISTRY_STORAGE=inmemory`,
`REGISTRY_STORAGE_INMEMORY=`, `REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY=/data`) replaces
the file's driver, where registry:2 would refuse two drivers; naming two is an error.
Keys spelled with an underscore (`max_retries`, `retry_delay` of azure) are matched whole:
`REGISTRY_STORAGE_AZURE_MAX_RETRIES` sets `storage.azure.max_retries`, given the
`joined` keys the declarations have.
REGISTRY_CONFIGURATION_PATH (the config file, read by the CLI) is no key, and neither are
Kubernetes' REGISTRY_SERVICE_* / REGISTRY_PORT*; any other REGISTRY_* variable naming no
key is refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

from mirror.config.errors import ConfigError
from mirror.settings import Problem, RawText

ENV_PREFIX: Final = "REGISTRY_"
# Read by the CLI (registry:2 compatible), not a configuration key.
ENV_CONFIG_PATH: Final = "REGISTRY_CONFIGURATION_PATH"
# Kubernetes injects REGISTRY_SERVICE_HOST, REGISTRY_PORT_5000_TCP, ... for a Service named
# "registry"; no configuration key starts with these segments, so they cannot mean one.
_FOREIGN_HEADS: Final = frozenset({"SERVICE", "PORT"})


def _parsed(value: RawText, path: str, variable: str) -> object:
    try:
        return value.parsed()
    except Problem as problem:
        raise ConfigError(f"{path}: {problem.message} (from {variable})") from None


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


def _joined(segments: list[str], compound: list[str]) -> list[str]:
    """`segments` with each run that spells a key holding underscores made one segment."""
    found: list[str] = []
    index = 0
    while index < len(segments):
        for key in reversed(compound):  # the longest first
            width = key.count("_") + 1
            if "_".join(segments[index : index + width]) == key:
                found.append(key)
                index += width
                break
        else:
            found.append(segments[index])
            index += 1
    return found


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
    settings: Iterable[str],
    joined: Iterable[str] = (),
) -> dict[str, str]:
    """Apply REGISTRY_* variables to `tree` in place; return {key path: variable}.

    Within `driver_section` (storage), any key not in `settings` names a driver (see the
    module docstring).
    """
    names = _env_names(env)
    compound = sorted({key.upper() for key in joined if "_" in key}, key=len)
    origins: dict[str, str] = {}
    handled = _switch_driver(
        tree,
        env=env,
        names=names,
        section=driver_section,
        settings=frozenset(settings),
        origins=origins,
    )
    for name in names:
        if name in handled:
            continue
        segments = _joined(name[len(ENV_PREFIX) :].split("_"), compound)
        if "" in segments:
            raise ConfigError(f"{name}: does not name a configuration key")
        node = tree
        path: list[str] = []
        for index, segment in enumerate(segments):
            key = _matching_key(node, segment)
            path.append(str(key))
            dotted = ".".join(path)
            if index == len(segments) - 1:
                node[key] = RawText(env[name])
                origins[dotted] = name
                break
            child = node.get(key)
            if isinstance(child, RawText):
                child = _parsed(child, dotted, origins.get(dotted, name))
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
            value = _parsed(RawText(env[name]), section, name)
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
