"""Response headers as bytes: the one place where every header value is made safe.

Header values are built from data that is not ours: an upstream's error text (in
`Warning`), its `Retry-After`, Locations built from what a client sent, the operator's
`http.headers`. A CR or LF in one would forge headers or split the response, and servers
refuse a response carrying CR, LF or NUL (a 500); a character outside Latin-1 cannot be
encoded at all. `render` turns every response's headers into bytes, so no such value ever
reaches the server:

- runs of control characters (CR, LF, NUL, ... but not TAB) become one space;
- characters outside ASCII are percent-encoded as UTF-8 (a Location stays a valid URL,
  text stays readable; Latin-1's upper half is encoded too, because clients read header
  bytes as UTF-8 as often as Latin-1);
- a header whose name is not an HTTP token is dropped (and logged).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

log = logging.getLogger("mirror.proxy")

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_CONTROLS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]+")
_NON_ASCII = re.compile(rb"[\x80-\xff]")


def header_value(value: str) -> str:
    """`value` as a valid, ASCII-only field value (see the module docstring)."""
    if value.isascii() and value.isprintable():
        return value  # the common case: nothing to do
    text = _CONTROLS.sub(" ", value).strip(" \t")
    if text.isascii():
        return text
    raw = text.encode("utf-8", "surrogatepass")
    return _NON_ASCII.sub(lambda found: b"%%%02X" % found[0][0], raw).decode("ascii")


# Header names come from this code and the configuration, a small set: each is checked
# once. b"" marks a name that is dropped.
_NAMES: dict[str, bytes] = {}
_NAMES_KEPT = 1024


def _name(name: str) -> bytes:
    key = name.lower().encode("ascii") if _TOKEN.fullmatch(name) else b""
    if not key:
        log.warning("dropped a response header with an invalid name %r", name[:60])
    if len(_NAMES) < _NAMES_KEPT:
        _NAMES[name] = key
    return key


def render(headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    """ASGI response headers for `headers`: names lower-cased, values made safe; of names
    that differ only in case, the last value is kept, in the place of the first."""
    rendered: dict[bytes, bytes] = {}
    for name, value in headers.items():
        key = _NAMES.get(name)
        if key is None:
            key = _name(name)
        if not key:
            continue
        if value.isascii() and value.isprintable():
            rendered[key] = value.encode("ascii")
        else:
            rendered[key] = header_value(value).encode("ascii")
    return list(rendered.items())
