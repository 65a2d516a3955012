"""The whole configuration: one field per top-level section, in the order they are read."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, get_args

from pydantic import BeforeValidator, ValidationInfo, field_validator

from mirror.config.auth import AuthConfig
from mirror.config.cache import CacheConfig
from mirror.config.cluster import ClusterConfig
from mirror.config.errors import ConfigError
from mirror.config.health import HealthConfig
from mirror.config.http import HTTPConfig, Server
from mirror.config.log import LogConfig
from mirror.config.notifications import NotificationsConfig
from mirror.config.proxy import ProxyConfig
from mirror.config.redis import RedisConfig
from mirror.config.storage import StorageConfig
from mirror.config.sync import SyncConfig
from mirror.settings import FromYAML, Problem, TypeName, adapter, setting, settings


def _version(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise Problem(f"expected 0.1, got {value!r}")
    if str(value).strip() != "0.1":
        raise Problem(f"unsupported configuration version {value!r} (expected 0.1)")
    return "0.1"


Version = Annotated[str, BeforeValidator(_version), FromYAML(), TypeName("`0.1`")]


@settings
class Config:
    version: Version = setting(default="0.1", doc="the configuration format (registry:2's)")
    log: LogConfig = setting(default_factory=LogConfig, doc="logging")
    storage: StorageConfig = setting(
        default=None, validate_default=True, doc="where content is kept: exactly one driver"
    )
    http: HTTPConfig = setting(default_factory=HTTPConfig, doc="the listener")
    redis: RedisConfig | None = setting(
        default=None,
        doc="present: leases and metadata are shared through Redis between processes and "
        "hosts; if Redis goes away, mirror falls back to its embedded coordination (logged, "
        "counted) and keeps serving",
    )
    proxy: ProxyConfig | None = setting(
        default=None,
        doc="present: a pull-through mirror (without: a standalone registry); its first "
        "upstream is written inline as in registry:2 (`proxy.remoteurl`, `name`, ...), more "
        "go in `proxy.upstreams`",
    )
    cache: CacheConfig = setting(
        default_factory=CacheConfig, validate_default=True, doc="local metadata"
    )
    cluster: ClusterConfig = setting(
        default_factory=ClusterConfig,
        doc="replicas on other hosts: followers of a download stream it from its holder",
    )
    sync: SyncConfig | None = setting(
        default=None,
        doc="present: `mirror serve` keeps these images of the upstreams cached and fresh",
    )
    notifications: NotificationsConfig = setting(
        default_factory=NotificationsConfig, doc="webhook notifications (registry:2's events)"
    )
    health: HealthConfig = setting(default_factory=HealthConfig, doc="health checks")
    auth: AuthConfig | None = setting(
        default=None,
        doc="present: clients authenticate (registry:2's controllers) and an access policy "
        "decides what they may do; without: anyone who reaches the port may do anything",
    )

    @field_validator("storage", mode="before")
    @classmethod
    def _storage_given(cls, value: object) -> object:
        if value is None:
            raise Problem(f"missing: configure one of {StorageConfig.supported()}")
        return value

    @field_validator("cache", mode="after")
    @classmethod
    def _cache_placed(cls, cache: CacheConfig, info: ValidationInfo) -> CacheConfig:
        storage = info.data.get("storage")
        if not isinstance(storage, StorageConfig):
            return cache  # storage was refused; that is the problem reported
        return cache.placed(storage.root_directory)

    @field_validator("cluster", mode="after")
    @classmethod
    def _cluster_spool(cls, cluster: ClusterConfig, info: ValidationInfo) -> ClusterConfig:
        storage, cache, http = (info.data.get(key) for key in ("storage", "cache", "http"))
        if (
            cluster.advertise
            and isinstance(storage, StorageConfig)
            and storage.root_directory is not None
        ):
            raise Problem(
                f"only object stores spool downloads for other replicas; on {storage.driver} "
                "they share its directory's temp files",
                ("advertise",),
            )
        if (
            cluster.advertise
            and isinstance(cache, CacheConfig)
            and cache.ephemeral
            and isinstance(http, HTTPConfig)
            and http.workers > 1
        ):
            raise Problem(
                "set cache.directory: each worker would spool its downloads into its own "
                "temporary directory, and the one answering another replica may not have them",
                ("advertise",),
            )
        return cluster

    @field_validator("sync", mode="after")
    @classmethod
    def _sync_upstreams(cls, sync: SyncConfig | None, info: ValidationInfo) -> SyncConfig | None:
        if sync is None or not sync.content:
            return sync
        proxy = info.data.get("proxy")
        if not isinstance(proxy, ProxyConfig):
            raise Problem("needs a proxy section with the upstreams it names")
        for index, content in enumerate(sync.content):
            if proxy.upstream(content.upstream) is None:
                raise Problem(
                    f"{content.upstream!r} is not the name or alias of a configured upstream",
                    ("content", index, "upstream"),
                )
        return sync

    @field_validator("auth", mode="after")
    @classmethod
    def _auth_upstreams(cls, auth: AuthConfig | None, info: ValidationInfo) -> AuthConfig | None:
        if auth is not None and auth.anonymouspull and info.data.get("proxy") is None:
            raise Problem(
                "anonymous pull of upstream content needs a proxy section", ("anonymouspull",)
            )
        service = auth.tokenservice if auth is not None else None
        cache, http = info.data.get("cache"), info.data.get("http")
        if (
            service is not None
            and not (service.key or service.keydirectory)
            and isinstance(cache, CacheConfig)
            and cache.ephemeral
            and isinstance(http, HTTPConfig)
            and http.workers > 1
        ):
            raise Problem(
                "set keydirectory (or key): each worker would make its own key in its own "
                "temporary cache directory",
                ("tokenservice", "keydirectory"),
            )
        return auth

    def redacted(self) -> dict[str, Any]:
        """The effective configuration as a plain dict in config-file form, secrets hidden.

        Dumped as YAML it is a valid configuration meaning the same thing, with
        "<redacted>" for every non-empty Secret (whatever section declares it) and without
        the accepted-and-ignored keys.
        """
        dumped: dict[str, Any] = adapter(Config).dump_python(
            self, mode="json", by_alias=True, exclude_none=True
        )
        return dumped


def with_server(config: Config, server: str) -> Config:
    """`config` with http.server set to `server` (granian | uvicorn); raises ConfigError."""
    choices: tuple[Server, ...] = get_args(Server)
    for choice in choices:
        if server == choice:
            return dataclasses.replace(config, http=dataclasses.replace(config.http, server=choice))
    raise ConfigError(f"http.server: expected one of {', '.join(choices)}, got {server!r}")
