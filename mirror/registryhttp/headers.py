"""Reading header values an upstream sent, which may hold any bytes at all.

httpx decodes header bytes as ASCII, else UTF-8, else Latin-1, so a value may contain
control characters or characters outside Latin-1. Values that are passed on to clients
(Retry-After) or trusted as numbers (Content-Length) are checked here, in the ASCII
syntax HTTP defines; anything else is treated as absent.
"""

from __future__ import annotations

import re
from email.utils import parsedate_to_datetime

_DIGITS = re.compile(r"[0-9]+")
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
