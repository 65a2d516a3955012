"""The `proxy` section: which upstream registries the pull-through mirror serves, and how.

registry:2 knows one upstream (`proxy.remoteurl`); here it is the first of a tuple of
`UpstreamConfig`, followed by the `proxy.upstreams` entries. Names and aliases are the
lookup keys for containerd's `?ns=` and for path prefixes; they are never dialled.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

from mirror.confignet import REDACTED, http_url, registry_host
from mirror.configtree import Section
from mirror.durations import WEEK, format_duration

DOCKER_HUB: Final = "docker.io"
DOCKER_HUB_HOSTS: Final = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
DOCKER_HUB_ALIASES: Final = ("index.docker.io", "registry-1.docker.io")
_LOCAL_PREFIX = re.compile(r"[a-z0-9][a-z0-9._/-]*")


@dataclass(frozen=True, slots=True)
class UpstreamConfig:
    name: str  # registry host name, lower case: "docker.io", "ghcr.io", "host:5000"
    remote_url: str  # where to connect, without a trailing slash
    aliases: tuple[str, ...] = ()  # further names that select this upstream
    username: str = ""
    password: str = ""
    freshness: float = 300.0  # seconds a tag is served without asking upstream
    ttl: float = WEEK  # seconds unused cached content is kept; 0 = forever
    offline: bool = False  # serve from cache only, never contact this upstream

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)

    def redacted(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "remoteurl": self.remote_url,
            "aliases": list(self.aliases),
            "username": self.username,
            "password": REDACTED if self.password else "",
            "freshness": format_duration(self.freshness),
            "ttl": format_duration(self.ttl),
            "offline": self.offline,
        }


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    """Stop calling an upstream after `failures` failures in a row, for `reset` seconds."""

    failures: int = 5
    reset: float = 30.0


@dataclass(frozen=True, slots=True)
class TimeoutsConfig:
    connect: float = 5.0
    read: float = 30.0


@dataclass(frozen=True, slots=True)
class ProxyConfig:
    upstreams: tuple[UpstreamConfig, ...]
    default: str = ""  # name of the upstream serving plain requests; "" = they are local
    local: tuple[str, ...] = ()  # repository name prefixes that are always local
    negative_ttl: float = 30.0  # seconds an upstream 404 is remembered
    breaker: BreakerConfig = field(default_factory=BreakerConfig)
    timeouts: TimeoutsConfig = field(default_factory=TimeoutsConfig)

    def upstream(self, name: str) -> UpstreamConfig | None:
        """The upstream called `name` or aliased so (case-insensitive), or None."""
        wanted = name.lower()
        for upstream in self.upstreams:
            if wanted in upstream.names:
                return upstream
        return None

    def redacted(self) -> dict[str, Any]:
        return {
            "default": self.default,
            "local": list(self.local),
            "negativettl": format_duration(self.negative_ttl),
            "breaker": {
                "failures": self.breaker.failures,
                "reset": format_duration(self.breaker.reset),
            },
            "timeouts": {
                "connect": format_duration(self.timeouts.connect),
                "read": format_duration(self.timeouts.read),
            },
            "upstreams": [upstream.redacted() for upstream in self.upstreams],
        }


def proxy_config(section: Section) -> ProxyConfig:
    """Build the proxy settings from the `proxy` section; raises ConfigError."""
    shared = UpstreamConfig(
        name="",
        remote_url="",
        freshness=section.duration("freshness", 300.0),
        ttl=section.duration("ttl", WEEK),
        offline=section.flag("offline", False),
    )
    upstreams: list[UpstreamConfig] = []
    owners: dict[str, str] = {}
    if section.has("remoteurl"):
        _add(upstreams, owners, section, _upstream(section, shared, single=True))
    else:
        for key in ("name", "aliases", "username", "password"):
            if section.has(key):
                raise section.error(key, "only valid together with proxy.remoteurl")
    for item in section.sections("upstreams"):
        _add(upstreams, owners, item, _upstream(item, shared, single=False))
        item.finish()
    if not upstreams:
        raise section.error("", "needs proxy.remoteurl or at least one proxy.upstreams entry")
    config = ProxyConfig(
        upstreams=tuple(upstreams),
        default=_default(section, upstreams),
        local=_local(section),
        negative_ttl=section.duration("negativettl", 30.0),
        breaker=_breaker(section.section("breaker")),
        timeouts=_timeouts(section.section("timeouts")),
    )
    section.finish()
    return config


def _upstream(section: Section, shared: UpstreamConfig, *, single: bool) -> UpstreamConfig:
    remote = section.text("remoteurl")
    url = http_url(remote)
    if not remote:
        raise section.error("remoteurl", "required")
    if url is None:
        raise section.error(
            "remoteurl", f"expected an absolute http(s) URL without credentials, got {remote!r}"
        )
    given = section.text("name")
    if not given and not single:
        raise section.error("name", "required")
    name = registry_host(given) if given else _derived_name(url)
    if name is None:
        raise section.error("name", f"expected a registry host[:port], got {given!r}")
    aliases = []
    for alias in section.texts("aliases", DOCKER_HUB_ALIASES if name == DOCKER_HUB else ()):
        host = registry_host(alias)
        if host is None:
            raise section.error("aliases", f"expected registry host[:port] names, got {alias!r}")
        aliases.append(host)
    if single:
        freshness, ttl, offline = shared.freshness, shared.ttl, shared.offline
    else:
        freshness = section.duration("freshness", shared.freshness)
        ttl = section.duration("ttl", shared.ttl)
        offline = section.flag("offline", shared.offline)
    return UpstreamConfig(
        name=name,
        remote_url=url,
        aliases=tuple(aliases),
        username=section.text("username"),
        password=section.text("password"),
        freshness=freshness,
        ttl=ttl,
        offline=offline,
    )


def _derived_name(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if host in DOCKER_HUB_HOSTS:
        return DOCKER_HUB
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{parts.port}" if parts.port is not None else host


def _add(
    upstreams: list[UpstreamConfig],
    owners: dict[str, str],
    section: Section,
    upstream: UpstreamConfig,
) -> None:
    for index, name in enumerate(upstream.names):
        if name in owners:
            raise section.error(
                "name" if index == 0 else "aliases",
                f"{name!r} already names the upstream at {owners[name]}",
            )
        owners[name] = section.path
    upstreams.append(upstream)


def _default(section: Section, upstreams: list[UpstreamConfig]) -> str:
    if not section.has("default"):
        return upstreams[0].name
    wanted = section.text("default")
    if not wanted:
        return ""
    for upstream in upstreams:
        if wanted.lower() in upstream.names:
            return upstream.name
    raise section.error("default", f"{wanted!r} is not the name or alias of a configured upstream")


def _local(section: Section) -> tuple[str, ...]:
    prefixes = section.texts("local")
    for prefix in prefixes:
        if _LOCAL_PREFIX.fullmatch(prefix) is None:
            raise section.error(
                "local", f"expected repository name prefixes like team/, got {prefix!r}"
            )
    return prefixes


def _breaker(section: Section | None) -> BreakerConfig:
    if section is None:
        return BreakerConfig()
    config = BreakerConfig(
        failures=section.integer("failures", 5, minimum=1),
        reset=section.duration("reset", 30.0, positive=True),
    )
    section.finish()
    return config


def _timeouts(section: Section | None) -> TimeoutsConfig:
    if section is None:
        return TimeoutsConfig()
    config = TimeoutsConfig(
        connect=section.duration("connect", 5.0, positive=True),
        read=section.duration("read", 30.0, positive=True),
    )
    section.finish()
    return config
