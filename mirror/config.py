"""Configuration: YAML plus REGISTRY_* environment overrides, parsed once into frozen values.

Keys mean what they mean in the reference registry (CNCF Distribution, `registry:2`), so a
registry:2 config file works unchanged for what is implemented. Durations take Go syntax
("168h", "1h30m", "10s", "500ms") or plain integers meaning seconds; values hold seconds.

==================================  ============================================================
key                                 treatment
==================================  ============================================================
version                             honoured: must be 0.1 when present
log.level                           honoured: error | warn | info | debug (servers and `mirror`)
log.accesslog.disabled              honoured: turns the server's access log off
log.formatter, log.fields           accepted, ignored (one plain text format)
storage.filesystem.rootdirectory    honoured (default /var/lib/registry, as registry:2)
storage.filesystem.maxthreads       accepted, ignored (no thread pool per driver)
storage.inmemory                    honoured
storage.delete.enabled              honoured
storage.maintenance.uploadpurging   honoured: enabled, age, interval, dryrun
storage.maintenance.readonly        honoured: enabled
storage.cache.blobdescriptor        accepted (inmemory | redis), ignored: own metadata cache
storage.redirect                    accepted, ignored: blobs are always served directly
http.addr                           honoured: host:port, :port (all interfaces), [v6]:port
http.host                           honoured: external base URL for Location headers
http.tls.certificate, .key          honoured: native TLS in either server
http.headers                        honoured: HTTPConfig.headers, added by the app to responses
http.secret                         accepted, ignored: upload state lives on the server
http.debug                          accepted, ignored: no debug server
health                              accepted, ignored: no background health checks
redis.addr, username, password, db  honoured: presence of `redis` enables shared coordination
redis.dialtimeout, readtimeout,     parsed and handed to the Redis client (RedisConfig)
  writetimeout
redis.pool                          accepted, ignored: the client pools on its own
proxy.remoteurl, username,          honoured: the registry:2 single upstream
  password, ttl
==================================  ============================================================

Extensions: `http.server` (granian | uvicorn), `http.workers`, `cache.directory`, and in
`proxy`: name, aliases, freshness, offline, default, local, negativettl, breaker, timeouts,
upstreams. `proxy.ttl`, `proxy.freshness` and `proxy.offline` belong to the remoteurl
upstream and are also the defaults of each `proxy.upstreams` entry. Any other key is an
error (so an `auth` or `notifications` block is refused, never silently dropped).

Environment: `REGISTRY_<PATH>` as in registry:2, see `mirror.configtree`. A variable naming
a storage driver (`REGISTRY_STORAGE=inmemory`, `REGISTRY_STORAGE_INMEMORY=`,
`REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY=/data`) replaces the file's driver, where
registry:2 would refuse two drivers; list items cannot be set one by one, but a whole list
can (`REGISTRY_PROXY_UPSTREAMS='[{name: ghcr.io, remoteurl: "https://ghcr.io"}]'`).
A REGISTRY_* variable that names no key is an error, except REGISTRY_CONFIGURATION_PATH
(the config file, read by the CLI) and Kubernetes' REGISTRY_SERVICE_* / REGISTRY_PORT*.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from mirror.confignet import HTTPConfig, RedisConfig, TLSConfig, http_config, redis_config
from mirror.configproxy import (
    BreakerConfig,
    ProxyConfig,
    TimeoutsConfig,
    UpstreamConfig,
    proxy_config,
)
from mirror.configtree import ConfigError, Section, load_yaml, overlay_env
from mirror.durations import WEEK, format_duration

__all__ = [
    "DEFAULT_CONFIG_YAML",
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

LOG_LEVELS: Final = ("error", "warn", "info", "debug")
DRIVERS: Final = ("filesystem", "inmemory")
STORAGE_SETTINGS: Final = frozenset({"delete", "maintenance", "cache", "redirect"})
DEFAULT_ROOT_DIRECTORY: Final = "/var/lib/registry"

# The repository's config.yml, built in: what `mirror serve` runs with no config file.
DEFAULT_CONFIG_YAML: Final = """\
# mirror: a pull-through cache of Docker Hub (plus ghcr.io, quay.io and registry.k8s.io),
# that also takes pushes to repositories under local/.
#
# Keys mean what they mean in registry:2 (CNCF Distribution); every key can be overridden
# from the environment: REGISTRY_ + the upper-cased key path joined by _, for example
# REGISTRY_HTTP_ADDR=:6000 or REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY=/data.
# `mirror check-config` prints the effective configuration.
version: 0.1

log:
  level: info                  # error | warn | info | debug
  accesslog:
    disabled: false

storage:
  filesystem:
    rootdirectory: ./data      # blobs, manifests and tags; metadata goes to ./data/_mirror
  delete:
    enabled: false
  maintenance:
    uploadpurging:             # drop upload sessions abandoned for longer than `age`
      enabled: true
      age: 168h
      interval: 24h
      dryrun: false

http:
  addr: :5000                  # every interface, port 5000
  headers:
    X-Content-Type-Options: [nosniff]
  server: granian              # granian | uvicorn
  workers: 1

proxy:
  # Plain requests (a Docker daemon's registry-mirrors) go to Docker Hub.
  remoteurl: https://registry-1.docker.io
  ttl: 168h                    # registry:2 retention; accepted, eviction not implemented yet
  freshness: 5m                # a tag is re-checked upstream (one HEAD) after this long
  local: [local/]              # local/... repositories live here only, push allowed
  negativettl: 30s
  breaker: {failures: 5, reset: 30s}
  timeouts: {connect: 5s, read: 30s}
  # Selected by containerd's ?ns=<host> or a <host>/ path prefix.
  upstreams:
    - name: ghcr.io
      remoteurl: https://ghcr.io
    - name: quay.io
      remoteurl: https://quay.io
    - name: registry.k8s.io
      remoteurl: https://registry.k8s.io
"""


@dataclass(frozen=True, slots=True)
class LogConfig:
    level: str = "info"
    access_log: bool = True


@dataclass(frozen=True, slots=True)
class UploadPurgingConfig:
    """Removal of abandoned upload sessions older than `age`, every `interval` seconds."""

    enabled: bool = True
    age: float = WEEK
    interval: float = 24 * 3600.0
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class StorageConfig:
    driver: str  # "filesystem" | "inmemory"
    root_directory: str | None = None  # filesystem only
    delete_enabled: bool = False
    read_only: bool = False
    upload_purging: UploadPurgingConfig = field(default_factory=UploadPurgingConfig)


@dataclass(frozen=True, slots=True)
class CacheConfig:
    """Where local metadata (diskcache) and spool files go.

    `ephemeral` is True when the directory is a fresh per-process temporary path chosen
    because nothing durable was configured; whoever creates it may remove it on exit.
    The directory is not created here.
    """

    directory: str
    ephemeral: bool = False


@dataclass(frozen=True, slots=True)
class Config:
    storage: StorageConfig
    http: HTTPConfig
    cache: CacheConfig
    log: LogConfig = field(default_factory=LogConfig)
    redis: RedisConfig | None = None  # present: coordinate through Redis
    proxy: ProxyConfig | None = None  # present: pull-through mirror
    version: str = "0.1"

    def redacted(self) -> dict[str, Any]:
        """The effective configuration as a plain dict in config-file form, passwords hidden.

        Dumped as YAML it is a valid configuration meaning the same thing (with
        "<redacted>" for every non-empty password).
        """
        storage: dict[str, Any] = (
            {"filesystem": {"rootdirectory": self.storage.root_directory}}
            if self.storage.driver == "filesystem"
            else {"inmemory": None}
        )
        purging = self.storage.upload_purging
        storage["delete"] = {"enabled": self.storage.delete_enabled}
        storage["maintenance"] = {
            "uploadpurging": {
                "enabled": purging.enabled,
                "age": format_duration(purging.age),
                "interval": format_duration(purging.interval),
                "dryrun": purging.dry_run,
            },
            "readonly": {"enabled": self.storage.read_only},
        }
        out: dict[str, Any] = {
            "version": self.version,
            "log": {"level": self.log.level, "accesslog": {"disabled": not self.log.access_log}},
            "storage": storage,
            "http": self.http.redacted(),
        }
        if self.redis is not None:
            out["redis"] = self.redis.redacted()
        if self.proxy is not None:
            out["proxy"] = self.proxy.redacted()
        out["cache"] = {"directory": self.cache.directory}
        return out


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
    origins = overlay_env(tree, env, driver_section="storage", settings=STORAGE_SETTINGS)
    root = Section(tree, "", origins)
    version = _version(root)
    log = _log(root.section("log"))
    storage = _storage(root.section("storage"), root)
    http = http_config(root.child("http"))
    redis_section = root.section("redis")
    redis = None if redis_section is None else redis_config(redis_section)
    proxy_section = root.section("proxy")
    proxy = None if proxy_section is None else proxy_config(proxy_section)
    cache = _cache(root.section("cache"), storage)
    root.ignore("health")
    root.finish()
    return Config(
        storage=storage,
        http=http,
        cache=cache,
        log=log,
        redis=redis,
        proxy=proxy,
        version=version,
    )


def _version(root: Section) -> str:
    value = root.value("version")
    if value is None:
        return "0.1"
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise root.error("version", f"expected 0.1, got {value!r}")
    if str(value).strip() != "0.1":
        raise root.error("version", f"unsupported configuration version {value!r} (expected 0.1)")
    return "0.1"


def _log(section: Section | None) -> LogConfig:
    if section is None:
        return LogConfig()
    level = section.text("level", "info").lower()
    level = "warn" if level == "warning" else level
    if level not in LOG_LEVELS:
        raise section.error("level", f"expected one of {', '.join(LOG_LEVELS)}, got {level!r}")
    access = section.section("accesslog")
    disabled = False
    if access is not None:
        disabled = access.flag("disabled", False)
        access.finish()
    section.text("formatter")
    section.ignore("fields")
    section.finish()
    return LogConfig(level=level, access_log=not disabled)


def _storage(section: Section | None, root: Section) -> StorageConfig:
    if section is None:
        raise root.error("storage", "missing: configure one of filesystem, inmemory")
    drivers = [key for key in section.names() if key not in STORAGE_SETTINGS]
    for driver in drivers:
        if driver not in DRIVERS:
            supported = ", ".join(DRIVERS)
            raise section.error(driver, f"unsupported storage driver (supported: {supported})")
    if not drivers:
        raise section.error("", "no storage driver: configure one of filesystem, inmemory")
    if len(drivers) > 1:
        raise section.error("", f"more than one storage driver: {', '.join(drivers)}")
    driver = drivers[0]
    params = section.child(driver)
    root_directory = None
    if driver == "filesystem":
        root_directory = params.text("rootdirectory", DEFAULT_ROOT_DIRECTORY)
        if not root_directory:
            raise params.error("rootdirectory", "must not be empty")
        params.integer("maxthreads", 100, minimum=1)
    params.finish()
    delete_enabled = _enabled(section.section("delete"), False)
    read_only = False
    purging = UploadPurgingConfig()
    maintenance = section.section("maintenance")
    if maintenance is not None:
        read_only = _enabled(maintenance.section("readonly"), False)
        purge = maintenance.section("uploadpurging")
        if purge is not None:
            purging = UploadPurgingConfig(
                enabled=purge.flag("enabled", True),
                age=purge.duration("age", WEEK),
                interval=purge.duration("interval", 24 * 3600.0, positive=True),
                dry_run=purge.flag("dryrun", False),
            )
            purge.finish()
        maintenance.finish()
    cache = section.section("cache")
    if cache is not None:
        cache.choice("blobdescriptor", "inmemory", ("inmemory", "redis"))
        cache.finish()
    redirect = section.section("redirect")
    if redirect is not None:
        redirect.flag("disable", False)
        redirect.finish()
    section.finish()
    return StorageConfig(
        driver=driver,
        root_directory=root_directory,
        delete_enabled=delete_enabled,
        read_only=read_only,
        upload_purging=purging,
    )


def _enabled(section: Section | None, default: bool) -> bool:
    if section is None:
        return default
    value = section.flag("enabled", default)
    section.finish()
    return value


def _cache(section: Section | None, storage: StorageConfig) -> CacheConfig:
    directory = ""
    if section is not None:
        directory = section.text("directory")
        section.finish()
    if directory:
        return CacheConfig(directory=directory)
    if storage.root_directory is not None:
        return CacheConfig(directory=os.path.join(storage.root_directory, "_mirror"))
    name = f"mirror-{os.getpid()}-{secrets.token_hex(4)}"
    return CacheConfig(directory=os.path.join(tempfile.gettempdir(), name), ephemeral=True)


def with_server(config: Config, server: str) -> Config:
    """`config` with http.server set to `server` (granian | uvicorn); raises ConfigError."""
    if server not in ("granian", "uvicorn"):
        raise ConfigError(f"http.server: expected one of granian, uvicorn, got {server!r}")
    return dataclasses.replace(config, http=dataclasses.replace(config.http, server=server))
