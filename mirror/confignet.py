"""Network settings of the configuration: the `http` listener and the `redis` connection.

Also the address and URL checks the `proxy` section shares. Values are frozen; durations
are seconds.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from mirror.configtree import Section
from mirror.durations import format_duration

SERVERS: Final = ("granian", "uvicorn")
REDACTED: Final = "<redacted>"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_PORT = re.compile(r"[0-9]{1,5}")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def is_host(text: str) -> bool:
    """True for a host name or an IPv4 address (IPv6 needs brackets where a port may follow)."""
    return len(text) <= 253 and _HOSTNAME.fullmatch(text) is not None


def split_host_port(text: str, *, any_host: bool = False) -> tuple[str, int] | None:
    """(host, port) of "host:port" or "[v6]:port"; ":port" gives host "" if `any_host`.

    Returns None when `text` is not of that form. IPv6 hosts come back without brackets.
    """
    if text.startswith("["):
        end = text.find("]")
        host, rest = text[1:end], text[end + 1 :]
        if end < 0 or not rest.startswith(":") or not _is_ipv6(host):
            return None
        port_text = rest[1:]
    else:
        host, colon, port_text = text.rpartition(":")
        if not colon or not ((host == "" and any_host) or is_host(host)):
            return None
    if not _PORT.fullmatch(port_text) or not 0 < int(port_text) < 65536:
        return None
    return host, int(port_text)


def registry_host(text: str) -> str | None:
    """`text` lower-cased if it looks like a registry host name, host[:port]; else None."""
    lowered = text.lower()
    bracketed = lowered.startswith("[") and lowered.endswith("]") and _is_ipv6(lowered[1:-1])
    if is_host(lowered) or bracketed or split_host_port(lowered) is not None:
        return lowered
    return None


def http_url(text: str) -> str | None:
    """`text` without a trailing slash if it is an absolute http(s) URL, else None.

    A URL carrying credentials, a query or a fragment is refused.
    """
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not (is_host(host) or _is_ipv6(host)):
        return None
    if parts.username is not None or parts.query or parts.fragment or port == 0:
        return None
    return f"{parts.scheme}://{parts.netloc.lower()}{parts.path.rstrip('/')}"


@dataclass(frozen=True, slots=True)
class TLSConfig:
    certificate: str  # PEM certificate chain file
    key: str  # PEM private key file


@dataclass(frozen=True, slots=True)
class HTTPConfig:
    addr: str = ":5000"  # as configured
    bind_host: str = ""  # "" means every interface
    bind_port: int = 5000
    external_url: str = ""  # http.host: base URL for Location headers; "" = from the request
    tls: TLSConfig | None = None
    # Extra response headers, in order; each value is sent as its own header line.
    headers: tuple[tuple[str, tuple[str, ...]], ...] = ()
    server: str = "granian"
    workers: int = 1

    @property
    def response_headers(self) -> dict[str, str]:
        """`headers` as one value per name (several joined by ", ", as HTTP allows)."""
        return {name: ", ".join(values) for name, values in self.headers}

    def redacted(self) -> dict[str, Any]:
        out: dict[str, Any] = {"addr": self.addr}
        if self.external_url:
            out["host"] = self.external_url
        if self.tls is not None:
            out["tls"] = {"certificate": self.tls.certificate, "key": self.tls.key}
        if self.headers:
            out["headers"] = {name: list(values) for name, values in self.headers}
        out["server"] = self.server
        out["workers"] = self.workers
        return out


def http_config(section: Section) -> HTTPConfig:
    addr = section.text("addr", ":5000")
    bound = split_host_port(addr, any_host=True)
    if bound is None:
        raise section.error("addr", f"expected host:port, got {addr!r}")
    external = section.text("host")
    if external and http_url(external) is None:
        raise section.error("host", f"expected an absolute http(s) URL, got {external!r}")
    config = HTTPConfig(
        addr=addr,
        bind_host=bound[0],
        bind_port=bound[1],
        external_url=http_url(external) or "",
        tls=_tls(section.section("tls")),
        headers=_headers(section.section("headers")),
        server=section.choice("server", "granian", SERVERS),
        workers=section.integer("workers", 1, minimum=1),
    )
    section.text("secret")
    section.ignore("debug")
    section.finish()
    return config


def _tls(section: Section | None) -> TLSConfig | None:
    if section is None:
        return None
    certificate = section.text("certificate")
    key = section.text("key")
    section.finish()
    if not certificate and not key:
        return None
    for name, path in (("certificate", certificate), ("key", key)):
        if not path:
            raise section.error(name, "missing: http.tls needs both certificate and key")
        if not os.path.isfile(path):
            raise section.error(name, f"file not found: {path}")
    return TLSConfig(certificate=certificate, key=key)


def _headers(section: Section | None) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if section is None:
        return ()
    headers = []
    for name in section.names():
        if _HEADER_NAME.fullmatch(name) is None:
            raise section.error(name, "not a valid HTTP header name")
        values = section.texts(name)
        if not all(value.isascii() and value.isprintable() for value in values):
            raise section.error(name, "header values must be printable ASCII")
        headers.append((name, values))
    return tuple(headers)


@dataclass(frozen=True, slots=True)
class RedisConfig:
    addr: str = "localhost:6379"
    host: str = "localhost"
    port: int = 6379
    username: str = ""
    password: str = ""
    db: int = 0
    # None: the client's own default.
    dial_timeout: float | None = None
    read_timeout: float | None = None
    write_timeout: float | None = None

    def redacted(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "addr": self.addr,
            "username": self.username,
            "password": REDACTED if self.password else "",
            "db": self.db,
        }
        for key, value in (
            ("dialtimeout", self.dial_timeout),
            ("readtimeout", self.read_timeout),
            ("writetimeout", self.write_timeout),
        ):
            if value is not None:
                out[key] = format_duration(value)
        return out


def redis_config(section: Section) -> RedisConfig:
    addr = section.text("addr", "localhost:6379")
    hostport = split_host_port(addr)
    if hostport is None:
        raise section.error("addr", f"expected host:port, got {addr!r}")
    config = RedisConfig(
        addr=addr,
        host=hostport[0],
        port=hostport[1],
        username=section.text("username"),
        password=section.text("password"),
        db=section.integer("db", 0),
        dial_timeout=section.optional_duration("dialtimeout"),
        read_timeout=section.optional_duration("readtimeout"),
        write_timeout=section.optional_duration("writetimeout"),
    )
    section.ignore("pool")
    section.finish()
    return config
