"""The `proxy` section: which upstream registries the pull-through mirror serves, and how.

registry:2 knows one upstream, written inline (`proxy.remoteurl`, `username`, ...); here
it is the first of `ProxyConfig.upstreams`, followed by the `proxy.upstreams` entries.
`proxy.freshness`, `ttl`, `offline` and `prefetch` belong to the inline upstream and are
also the defaults of every entry. Present, the section makes this a pull-through mirror.
"""

from __future__ import annotations

import re
from typing import Annotated, ClassVar

from pydantic import AfterValidator

from mirror.config.upstream import UpstreamConfig, name_from_url
from mirror.settings import (
    ByteSize,
    Duration,
    Integer,
    PositiveDuration,
    Problem,
    Text,
    TextList,
    TypeName,
    field_type,
    keys_of,
    prepare,
    setting,
    settings,
    within,
)
from mirror.settings.problems import MAPPING

_LOCAL_PREFIX = re.compile(r"[a-z0-9][a-z0-9._/-]*")


def _prefixes(prefixes: tuple[str, ...]) -> tuple[str, ...]:
    for prefix in prefixes:
        if _LOCAL_PREFIX.fullmatch(prefix) is None:
            raise Problem(f"expected repository name prefixes like team/, got {prefix!r}")
    return prefixes


RepositoryPrefixes = Annotated[
    TextList, AfterValidator(_prefixes), TypeName("list of repository prefixes")
]


@settings
class BreakerConfig:
    """Stop calling an upstream after `failures` failures in a row, for `reset` seconds."""

    failures: Integer = setting(
        default=5, ge=1, doc="failures in a row that open an upstream's circuit"
    )
    reset: PositiveDuration = setting(default=30.0, doc="how long the circuit stays open")


@settings
class TimeoutsConfig:
    connect: PositiveDuration = setting(default=5.0, doc="connecting to an upstream")
    read: PositiveDuration = setting(
        default=30.0, doc="waiting for an upstream's bytes (also writes and a free connection)"
    )
    stall: PositiveDuration = setting(
        default=60.0,
        doc="a blob download that moves no byte (from the upstream or to the disk) this long "
        "fails, and its clients with it",
    )
    blob_min_rate: ByteSize = setting(
        default=10 * 1024,
        key="blobminrate",
        doc="bytes per second a blob body must bring, over each `blobratewindow` of waiting "
        "on it (0: any rate)",
    )
    blob_rate_window: PositiveDuration = setting(
        default=30.0, key="blobratewindow", doc="the stretch of waiting `blobminrate` is taken over"
    )
    blob: Duration = setting(
        default=0.0, doc="the longest a whole blob body may take (0: no limit)"
    )


@settings
class ProxyConfig:
    # The keys of one upstream may be written in the section itself (registry:2's form).
    inline: ClassVar[type[UpstreamConfig]] = UpstreamConfig
    # ... and these of them are every entry's defaults.
    inherited: ClassVar[tuple[str, ...]] = ("freshness", "ttl", "offline", "prefetch")
    # What `arrange` makes of an inline key left out (for the reference table).
    inline_defaults: ClassVar[dict[str, str]] = {
        "name": "from `remoteurl` (`docker.io` for Docker Hub)"
    }

    default: Text = setting(
        default="",
        doc='the upstream (name or alias) serving plain requests (default: the first one); `""` '
        "makes every plain name local",
    )
    local: RepositoryPrefixes = setting(
        default=(), doc="repository name prefixes that are always local (push allowed)"
    )
    negative_ttl: Duration = setting(
        default=30.0, key="negativettl", doc="how long an upstream 404 is remembered"
    )
    breaker: BreakerConfig = setting(default_factory=BreakerConfig, doc="circuit breaker")
    timeouts: TimeoutsConfig = setting(default_factory=TimeoutsConfig, doc="upstream timeouts")
    upstreams: tuple[UpstreamConfig, ...] = setting(
        doc="more upstreams, selected by `?ns=<name>` or a `<name>/` path prefix"
    )

    def upstream(self, name: str) -> UpstreamConfig | None:
        """The upstream called `name` or aliased so (case-insensitive), or None."""
        wanted = name.lower()
        for upstream in self.upstreams:
            if wanted in upstream.names:
                return upstream
        return None

    @classmethod
    def arrange(cls, data: dict[str, object]) -> dict[str, object]:
        """The inline upstream and the entries as one tuple; `default` resolved to a name."""
        own = set(keys_of(cls.inline))
        inline = prepare(cls.inline, {key: data.pop(key) for key in list(data) if key in own})
        ready = prepare(cls, data)
        shared = {
            key: within(field_type(cls.inline, key), inline[key], key)
            for key in cls.inherited
            if key in inline
        }
        upstreams: list[UpstreamConfig] = []
        owners: dict[str, str] = {}
        if "remoteurl" in inline:
            inline["name"] = inline.get("name") or name_from_url(inline["remoteurl"]) or ""
            upstreams.append(_claim(owners, within(cls.inline, inline), (), "proxy"))
        else:
            for key in keys_of(cls.inline):
                if key in inline and key not in cls.inherited:
                    raise Problem("only valid together with proxy.remoteurl", (key,))
        entries = ready.get("upstreams", [])
        if not isinstance(entries, list):
            raise Problem(f"expected a list, got {entries!r}", ("upstreams",))
        for index, entry in enumerate(entries):
            at = ("upstreams", index)
            if not isinstance(entry, dict):
                raise Problem(MAPPING, at)
            upstream = within(cls.inline, {**shared, **prepare(cls.inline, entry)}, *at)
            upstreams.append(_claim(owners, upstream, at, f"proxy.upstreams[{index}]"))
        if not upstreams:
            raise Problem("needs proxy.remoteurl or at least one proxy.upstreams entry")
        return {**ready, "default": _default(ready, upstreams), "upstreams": tuple(upstreams)}


def _claim(
    owners: dict[str, str], upstream: UpstreamConfig, at: tuple[str | int, ...], path: str
) -> UpstreamConfig:
    for index, name in enumerate(upstream.names):
        if name in owners:
            key = "name" if index == 0 else "aliases"
            raise Problem(f"{name!r} already names the upstream at {owners[name]}", (*at, key))
        owners[name] = path
    return upstream


def _default(ready: dict[str, object], upstreams: list[UpstreamConfig]) -> str:
    if "default" not in ready:
        return upstreams[0].name
    wanted: str = within(Text, ready["default"], "default")
    if not wanted:
        return ""
    for upstream in upstreams:
        if wanted.lower() in upstream.names:
            return upstream.name
    raise Problem(f"{wanted!r} is not the name or alias of a configured upstream", ("default",))
