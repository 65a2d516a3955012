"""The `http` section: where and how the registry listens, and what it adds to responses."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import PlainSerializer, PlainValidator, field_validator, model_validator

from mirror.config.addresses import BaseURL, ListenAddress, split_host_port
from mirror.config.ui import UIConfig
from mirror.settings import (
    Duration,
    Flag,
    Integer,
    OneOf,
    Problem,
    RawText,
    Text,
    TextList,
    TypeName,
    ignored,
    setting,
    settings,
    within,
)
from mirror.settings.problems import MAPPING

_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
HeaderList = tuple[tuple[str, tuple[str, ...]], ...]
Server = Literal["granian", "uvicorn"]


def _headers(value: object) -> HeaderList:
    if isinstance(value, tuple):
        return value  # built by code, already in this form
    if not isinstance(value, Mapping):
        raise Problem(f"{MAPPING}, got {value!r}")
    headers = []
    for key, raw in value.items():
        name = str(key)
        if _HEADER_NAME.fullmatch(name) is None:
            raise Problem("not a valid HTTP header name", (name,))
        try:
            given = raw.parsed() if isinstance(raw, RawText) else raw
        except Problem as problem:
            raise problem.under(name) from None
        values: tuple[str, ...] = () if given is None else within(TextList, given, name)
        if not all(item.isascii() and item.isprintable() for item in values):
            raise Problem("header values must be printable ASCII", (name,))
        headers.append((name, values))
    return tuple(headers)


def _header_map(headers: HeaderList) -> dict[str, list[str]]:
    return {name: list(values) for name, values in headers}


# In order; each value is sent as its own header line. (The environment can add one,
# REGISTRY_HTTP_HEADERS_X-FRAME-OPTIONS=DENY, so a value here may be RawText.)
Headers = Annotated[
    HeaderList,
    PlainValidator(_headers),
    PlainSerializer(_header_map),
    TypeName("map of header name to values"),
]


@settings
class TLSConfig:
    certificate: Text = setting(default="", doc="PEM certificate chain file")
    key: Text = setting(default="", doc="PEM private key file")

    @model_validator(mode="after")
    def _files_exist(self) -> TLSConfig:
        if not self.certificate and not self.key:
            return self  # no TLS (HTTPConfig keeps None)
        for name, path in (("certificate", self.certificate), ("key", self.key)):
            if not path:
                raise Problem("missing: http.tls needs both certificate and key", (name,))
            if not os.path.isfile(path):
                raise Problem(f"file not found: {path}", (name,))
        return self


@settings
class PrometheusConfig:
    enabled: Flag = setting(default=False, doc="serve the metrics on the debug listener")
    path: Text = setting(default="/metrics", doc="where on the debug listener")

    @field_validator("path", mode="after")
    @classmethod
    def _absolute(cls, path: str) -> str:
        if not path.startswith("/") or path == "/debug/health":
            raise Problem(f"expected a path like /metrics, got {path!r}")
        return path


@settings
class DebugConfig:
    addr: Text = setting(
        default="",
        doc="`host:port` of the debug listener (`/debug/health`, metrics); empty: none",
    )
    prometheus: PrometheusConfig = setting(
        default_factory=PrometheusConfig, doc="metrics on the debug listener"
    )

    @field_validator("addr", mode="after")
    @classmethod
    def _address(cls, addr: str) -> str:
        if addr and split_host_port(addr, any_host=True) is None:
            raise Problem(f"expected [host]:port, got {addr!r}")
        return addr


@settings
class HTTPConfig:
    addr: ListenAddress = setting(
        default=":5000", doc="`host:port`, `:port` (every interface, IPv4 and IPv6), `[::1]:port`"
    )
    external_url: BaseURL = setting(
        default="",
        key="host",
        omit_empty=True,
        doc="external base URL used in `Location` headers (default: from the request)",
    )
    tls: TLSConfig | None = setting(
        default=None, doc="serve HTTPS natively (either server): both files, or neither"
    )
    headers: Headers = setting(
        default=(), omit_empty=True, doc="extra response headers (a value or a list of values)"
    )
    server: Annotated[Server, OneOf()] = setting(
        default="granian", doc="the ASGI server (also `mirror serve --server`)"
    )
    workers: Integer = setting(default=1, ge=1, doc="worker processes")
    secret: Text = ignored(default="", why="upload state lives on the server")
    debug: DebugConfig = setting(
        default_factory=DebugConfig, doc="the debug listener (one per server, whatever the workers)"
    )
    drain_timeout: Duration = setting(
        default=25.0,
        key="draintimeout",
        doc="on SIGTERM: how long running requests and downloads may take to finish before "
        "they are cut (below Kubernetes' default 30s grace period)",
    )
    ui: UIConfig = setting(default_factory=UIConfig, doc="the web dashboard (extension)")

    @field_validator("tls", mode="after")
    @classmethod
    def _no_files_no_tls(cls, tls: TLSConfig | None) -> TLSConfig | None:
        return None if tls is not None and not tls.certificate and not tls.key else tls

    @property
    def bind_host(self) -> str:
        """The host part of `addr`; "" means every interface."""
        return self._bound[0]

    @property
    def bind_port(self) -> int:
        return self._bound[1]

    @property
    def _bound(self) -> tuple[str, int]:
        bound = split_host_port(self.addr, any_host=True)
        if bound is None:  # pragma: no cover - the type refused it
            raise ValueError(f"not a listen address: {self.addr!r}")
        return bound

    @property
    def response_headers(self) -> dict[str, str]:
        """`headers` as one value per name (several joined by ", ", as HTTP allows)."""
        return {name: ", ".join(values) for name, values in self.headers}
