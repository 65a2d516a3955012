"""Reading a configuration: YAML text, environment overrides, validation into `Config`."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping

import yaml
from pydantic import ValidationError

from mirror.config.default import DEFAULT_CONFIG_YAML
from mirror.config.env import overlay_env
from mirror.config.errors import ConfigError, config_error
from mirror.config.root import Config
from mirror.config.storage import StorageConfig
from mirror.settings import adapter, explain, fields_of, items_of, keys_of, section_of
from mirror.store.drivers import DRIVERS


def load_config(path: str | None, env: Mapping[str, str] = os.environ) -> Config:
    """Read the config file at `path` (None: the embedded default) with `env` overrides.

    Raises ConfigError (one line, naming the key path or variable) for anything invalid,
    including an unreadable file.
    """
    if path is None:
        return parse_config(DEFAULT_CONFIG_YAML, env, source="<embedded default config>")
    try:
        with open(path, encoding="utf-8") as stream:
            text = stream.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"{path}: cannot read config file: {reason}") from None
    return parse_config(text, env, source=path)


def parse_config(
    text: str, env: Mapping[str, str] = os.environ, *, source: str = "<config>"
) -> Config:
    """Parse configuration `text` (YAML) with `env` overrides; raises ConfigError."""
    tree = load_yaml(text, source)
    # registry:2 also accepts the short form `storage: inmemory`.
    if isinstance(tree.get("storage"), str):
        tree["storage"] = {tree["storage"]: None}
    origins = overlay_env(
        tree,
        env,
        driver_section="storage",
        settings=keys_of(StorageConfig),
        joined=_joined_keys(),
    )
    try:
        config: Config = adapter(Config).validate_python(tree, by_alias=True, by_name=False)
    except ValidationError as exc:
        raise config_error(explain(exc), origins) from None
    return config


@functools.cache
def _joined_keys() -> frozenset[str]:
    """Every declared key spelled with an underscore (the environment must not split it)."""
    found: set[str] = set()
    pending: list[type] = [Config, *DRIVERS.values()]
    while pending:
        kind = pending.pop()
        found.update(key for key in keys_of(kind) if "_" in key)
        for info in fields_of(kind).values():
            inner = section_of(info.annotation) or items_of(info.annotation)
            if inner is not None:
                pending.append(inner)
    return frozenset(found)


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
