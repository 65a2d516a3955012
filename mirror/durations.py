"""Durations in Go syntax ("168h", "1h30m", "10s", "500ms"), as registry:2 configs write them.

Configuration values hold durations as float seconds; this module converts both ways so a
printed configuration can be read back unchanged.
"""

from __future__ import annotations

import math
import re

WEEK = 7 * 24 * 3600.0  # registry:2's default for proxy.ttl and upload purging age

_NANOS_PER_UNIT = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,  # micro sign, as Go's time.ParseDuration accepts
    "\u03bcs": 1_000,  # Greek small letter mu
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_TERM = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")
_PLAIN_SECONDS = re.compile(r"\d+")
# Largest units first, so formatting picks "1h30m" rather than "90m".
_FORMAT_UNITS = (
    ("h", 3_600_000_000_000),
    ("m", 60_000_000_000),
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
    ("us", 1_000),
    ("ns", 1),
)


def parse_duration(value: object) -> float:
    """Return `value` as a non-negative number of seconds.

    Accepts a Go duration string (a sequence of decimal numbers, each with a unit among
    ns, us, ms, s, m, h), a plain integer or float meaning seconds, or a string of digits
    meaning seconds. Raises ValueError for anything else, including negative durations.
    """
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"not a non-negative duration: {value!r}")
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"not a duration: {value!r}")
    text = value.strip()
    if text.startswith("+"):
        text = text[1:]
    if _PLAIN_SECONDS.fullmatch(text):
        return float(int(text))
    pos = 0
    total_nanos = 0.0
    while pos < len(text):
        match = _TERM.match(text, pos)
        if match is None:
            raise ValueError(f"not a duration: {value!r}")
        total_nanos += float(match.group(1)) * _NANOS_PER_UNIT[match.group(2)]
        pos = match.end()
    if pos == 0:
        raise ValueError(f"not a duration: {value!r}")
    return total_nanos / 1e9


def format_duration(seconds: float) -> str:
    """Format `seconds` in Go syntax, exact to the nanosecond ("1h30m", "500ms", "0s")."""
    if seconds < 0:
        raise ValueError(f"negative duration: {seconds!r}")
    nanos = round(seconds * 1e9)
    if nanos == 0:
        return "0s"
    parts: list[str] = []
    for unit, size in _FORMAT_UNITS:
        count, nanos = divmod(nanos, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
