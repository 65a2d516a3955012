"""Configuration: YAML plus REGISTRY_* environment overrides, validated once into frozen values.

Keys mean what they mean in the reference registry (CNCF Distribution, `registry:2`), so a
registry:2 config file works unchanged for what is implemented; keys registry:2 knows and
mirror does not implement are accepted-and-ignored (said so in their meaning) or refused
(never silently dropped). Every key is declared once, as a
field of its section's `@settings` class (`mirror.settings`): type, default and meaning.
From those declarations come the parsing (unknown keys refused, one line naming the key
path and the variable), the `check-config` dump (every `Secret` redacted) and the README's
reference table (`python -m mirror.config.docs`).

To add a key: a field `= setting(default=..., doc=...)` on its section's class; regenerate
the README table. To add an area: a `@settings` class in its own module, and one field of
that type on `Config` or its parent section. A storage driver: a `DriverParameters` in DRIVERS.

Why pydantic (v2) rather than msgspec: its dataclasses stay real frozen dataclasses
(`dataclasses.replace`, `FrozenInstanceError`); per-type validators raise our own
messages, so registry:2's wording survives; aliases keep registry:2's key spellings beside
Python names; fields carry descriptions to generate docs from and serializers to redact
with. msgspec decodes faster, but a configuration is read once, its error messages are its
own, and it has no per-field validators or descriptions.

Sections: `root` (Config), `log`, `storage`, `http`, `redis`, `proxy` and `upstream`,
`cache`; `env` applies the environment, `load` reads a file, `docs` prints the table.
"""

from __future__ import annotations

from mirror.config.cache import CacheConfig
from mirror.config.default import DEFAULT_CONFIG_YAML
from mirror.config.env import ENV_CONFIG_PATH
from mirror.config.errors import ConfigError
from mirror.config.http import HTTPConfig, TLSConfig
from mirror.config.load import load_config, parse_config
from mirror.config.log import LogConfig
from mirror.config.proxy import BreakerConfig, ProxyConfig, TimeoutsConfig
from mirror.config.redis import RedisConfig
from mirror.config.root import Config, with_server
from mirror.config.storage import StorageConfig, UploadPurgingConfig
from mirror.config.upstream import UpstreamConfig

__all__ = [
    "DEFAULT_CONFIG_YAML",
    "ENV_CONFIG_PATH",
    "BreakerConfig",
    "CacheConfig",
    "Config",
    "ConfigError",
    "HTTPConfig",
    "LogConfig",
    "ProxyConfig",
    "RedisConfig",
    "StorageConfig",
    "TLSConfig",
    "TimeoutsConfig",
    "UploadPurgingConfig",
    "UpstreamConfig",
    "load_config",
    "parse_config",
    "with_server",
]
