"""HTTP `Range` headers for blob GETs (RFC 9110, a single byte range)."""

from __future__ import annotations

import re

from mirror.errors import RangeNotSatisfiable

_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive (start, end) a Range header selects, or None to send everything.

    Malformed headers and multiple ranges are ignored (RFC 9110 allows a full 200);
    a well-formed range outside the content raises RangeNotSatisfiable.
    """
    if not header:
        return None
    match = _RANGE.match(header)
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:
        suffix = int(last)
        if suffix == 0:
            raise RangeNotSatisfiable("empty suffix range", size=size)
        return max(size - suffix, 0), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None
    if start >= size:
        raise RangeNotSatisfiable(f"range starts at {start}, blob has {size} bytes", size=size)
    return start, min(end, size - 1)
