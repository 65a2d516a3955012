"""Raw client input checked at the HTTP edge: plain numbers and the Host header.

Python's own parsers are lenient where a client's input must not be: `int()` takes
`1_0`, `+5`, ` 5` and the digits of other scripts (Arabic-Indic, fullwidth),
`str.isdigit()` takes superscripts (which `int()` then refuses: a 500), and `int()` of
more than 4300 digits raises.
"""

from __future__ import annotations

import re

# Larger than any size, offset or count this registry handles; more digits than this
# are read as this (beyond any blob), never parsed.
HUGE = 10**18
_MAX_DIGITS = len(str(HUGE)) - 1
_HOST = re.compile(rb"[A-Za-z0-9!$%&'()*+,\-.:;=\[\]_~]*")


def plain_number(text: str) -> int | None:
    """The value of `text` if it is one or more ASCII digits (HUGE when longer than 18
    digits), else None."""
    if not text or not text.isascii() or not text.isdigit():
        return None
    if len(text) > _MAX_DIGITS:
        return HUGE
    return int(text)


def host_problem(scope_headers: list[tuple[bytes, bytes]], http_version: str) -> str | None:
    """What is wrong with a request's Host header, or None.

    As the reference registry (Go's HTTP server) does: HTTP/1.1 requires a Host header;
    no version may send two; a value may hold only the characters of a host and port.
    granian reports a missing Host as an empty one, so on HTTP/1.1 an empty Host counts as
    missing (the reference accepts that one; RFC 9112 allows it only for a target without
    an authority, which no registry request is). HTTP/1.0 may leave it out, and so may
    HTTP/2, whose authority is a pseudo-header.
    """
    hosts = [value for name, value in scope_headers if name == b"host"]
    if len(hosts) > 1:
        return "more than one Host header"
    if not hosts or not hosts[0]:
        return "missing required Host header" if http_version == "1.1" else None
    if _HOST.fullmatch(hosts[0]) is None:
        return "malformed Host header"
    return None
