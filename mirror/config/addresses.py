"""Addresses and URLs in the configuration: listen addresses, host:port, http(s) URLs, names.

The checks (also used by the proxy section to derive an upstream's name) and the value
types built on them, each refusing a bad value with the message a config's reader needs.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator

from mirror.settings import Problem, TextList, TypeName
from mirror.settings.problems import QUOTE_IT, REQUIRED

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_PORT = re.compile(r"[0-9]{1,5}")


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


def _text(check: Callable[[str], str]) -> BeforeValidator:
    def validate(value: object) -> str:
        if not isinstance(value, str):
            raise Problem(QUOTE_IT.format(value=value))
        return check(value)

    return BeforeValidator(validate)


def _address(*, any_host: bool) -> Callable[[str], str]:
    def check(text: str) -> str:
        if split_host_port(text, any_host=any_host) is None:
            raise Problem(f"expected host:port, got {text!r}")
        return text

    return check


def _base_url(text: str) -> str:
    if not text:
        return ""
    url = http_url(text)
    if url is None:
        raise Problem(f"expected an absolute http(s) URL, got {text!r}")
    return url


def _remote_url(text: str) -> str:
    if not text:
        raise Problem(REQUIRED)
    url = http_url(text)
    if url is None:
        raise Problem(f"expected an absolute http(s) URL without credentials, got {text!r}")
    return url


def _registry_name(text: str) -> str:
    if not text:
        raise Problem(REQUIRED)
    name = registry_host(text)
    if name is None:
        raise Problem(f"expected a registry host[:port], got {text!r}")
    return name


def _registry_names(names: tuple[str, ...]) -> tuple[str, ...]:
    found = []
    for alias in names:
        host = registry_host(alias)
        if host is None:
            raise Problem(f"expected registry host[:port] names, got {alias!r}")
        found.append(host)
    return tuple(found)


# Kept as written ("[::1]:5000", ":5000"); HTTPConfig and RedisConfig split it.
ListenAddress = Annotated[str, _text(_address(any_host=True)), TypeName("[host]:port")]
HostPort = Annotated[str, _text(_address(any_host=False)), TypeName("host:port")]
# Normalised: no trailing slash, host lower-cased.
BaseURL = Annotated[str, _text(_base_url), TypeName("URL")]
RemoteURL = Annotated[str, _text(_remote_url), TypeName("URL")]
RegistryName = Annotated[str, _text(_registry_name), TypeName("registry host[:port]")]
RegistryNames = Annotated[
    TextList, AfterValidator(_registry_names), TypeName("list of registry host[:port]s")
]


def _any_http_url(text: str) -> str:
    """An absolute http(s) URL kept as written (a webhook's query string included)."""
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        port, parts = 0, None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or port == 0
        or any(ch.isspace() or not ch.isprintable() for ch in text)
    ):
        raise Problem(f"expected an absolute http(s) URL, got {text!r}")
    return text


AnyHTTPURL = Annotated[str, _text(_any_http_url), TypeName("URL")]
