"""Reading header values an upstream sent, which may hold any bytes at all.

httpx decodes header bytes as ASCII, else UTF-8, else Latin-1, so a value may contain
control characters or characters outside Latin-1. Values that are passed on to clients
(Retry-After) or trusted as numbers (Content-Length, ratelimit-*) are checked here, in
the ASCII syntax HTTP defines; anything else is treated as absent.
"""

from __future__ import annotations

import re
from email.utils import parsedate_to_datetime

from mirror.digests import Digest
from mirror.errors import DigestInvalid, Unsupported

_DIGITS = re.compile(r"[0-9]+")
_LINK_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')
# IMF-fixdate, the HTTP-date form senders must use (RFC 9110, 5.6.7), e.g.
# "Sun, 06 Nov 1994 08:49:37 GMT".
_IMF_FIXDATE = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} "
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} "
    r"[0-9]{2}:[0-9]{2}:[0-9]{2} GMT"
)


def ascii_int(value: str | None) -> int | None:
    """A header of ASCII digits as an int (surrounding blanks allowed), else None."""
    if value is None:
        return None
    text = value.strip(" \t")
    return int(text) if _DIGITS.fullmatch(text) else None


def valid_retry_after(value: str | None) -> str | None:
    """A Retry-After value fit to pass on: delta-seconds or an HTTP-date, else None."""
    if value is None:
        return None
    text = value.strip(" \t")
    if _DIGITS.fullmatch(text):
        return text
    if _IMF_FIXDATE.fullmatch(text):
        try:
            parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        return text
    return None


def media_type(value: str | None) -> str:
    """A Content-Type without its parameters, lower case ("" when absent)."""
    return (value or "").split(";", 1)[0].strip().lower()


def digest_header(value: str | None) -> Digest | None:
    """A Docker-Content-Digest value, or None when absent or malformed."""
    if not value:
        return None
    try:
        return Digest.parse(value.strip())
    except (DigestInvalid, Unsupported):
        return None


def quota(value: str | None) -> tuple[int, int | None] | None:
    """Parse `100;w=21600` (also `100, 100;w=21600`) into (amount, window seconds)."""
    if not value:
        return None
    items = value.split(",")
    head = ascii_int(items[0].split(";", 1)[0])
    if head is None:
        return None
    window = None
    for item in items:
        for param in item.split(";")[1:]:
            key, _, number = param.partition("=")
            seconds = ascii_int(number)
            if key.strip().lower() == "w" and seconds is not None:
                window = seconds
    return head, window


def next_page(link: str | None, base: str) -> str | None:
    """The path of a `Link: <...>; rel="next"` target on the same registry, or None."""
    if not link:
        return None
    match = _LINK_NEXT.search(link)
    if match is None:
        return None
    target = match.group(1)
    if target.startswith(base):
        target = target[len(base) :]
    return target if target.startswith("/v2/") else None
