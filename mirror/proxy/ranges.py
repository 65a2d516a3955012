"""HTTP `Range` headers for blob GETs (RFC 9110, a single byte range)."""

from __future__ import annotations

import re

from mirror.errors import RangeNotSatisfiable
from mirror.proxy.inputs import plain_number

_RANGE = re.compile(r"^[ \t]*bytes[ \t]*=[ \t]*([0-9]*)[ \t]*-[ \t]*([0-9]*)[ \t]*$")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive (start, end) a Range header selects, or None to send everything.

    Malformed headers and multiple ranges are ignored (RFC 9110 allows a full 200);
    a well-formed range outside the content raises RangeNotSatisfiable.
    """
    if not header:
        return None
    match = _RANGE.fullmatch(header)
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:
        suffix = _number(last)
        if suffix == 0:
            raise RangeNotSatisfiable("empty suffix range", size=size)
        return max(size - suffix, 0), size - 1
    start = _number(first)
    end = _number(last) if last else size - 1
    if last and end < start:
        return None
    if start >= size:
        raise RangeNotSatisfiable(f"range starts at {start}, blob has {size} bytes", size=size)
    return start, min(end, size - 1)


def _number(digits: str) -> int:
    number = plain_number(digits)
    assert number is not None  # the pattern matched digits only
    return number
