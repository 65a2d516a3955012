"""Sizes in bytes written with units ("200MB", "50GiB", "512k"), as configs write them.

Decimal units are powers of 1000 (kB, MB, GB, TB, PB), binary units powers of 1024 (KiB,
MiB, GiB, TiB, PiB), like Docker's `units.RAMInBytes`/`FromHumanSize` pair keeps them
apart; unit letters are case-insensitive and the trailing "B" optional ("5g" = "5GB").
Values hold whole bytes; `format_size` prints a size so that it parses back unchanged.
"""

from __future__ import annotations

import math
import re

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "m": 1000**2,
    "g": 1000**3,
    "t": 1000**4,
    "p": 1000**5,
    "ki": 1024,
    "mi": 1024**2,
    "gi": 1024**3,
    "ti": 1024**4,
    "pi": 1024**5,
}
_SIZE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([kmgtp]i?)?b?", re.IGNORECASE)
# Largest first, binary before decimal: 1073741824 prints as "1GiB", 1000000 as "1MB".
_FORMAT_UNITS = (
    ("PiB", 1024**5),
    ("PB", 1000**5),
    ("TiB", 1024**4),
    ("TB", 1000**4),
    ("GiB", 1024**3),
    ("GB", 1000**3),
    ("MiB", 1024**2),
    ("MB", 1000**2),
    ("KiB", 1024),
    ("kB", 1000),
)


def parse_size(value: object) -> int:
    """Return `value` as a non-negative whole number of bytes.

    Accepts an integer (bytes), or a string: a decimal number and an optional unit (see
    the module docstring), e.g. "200MB", "1.5GiB", "512k", "4096". A fractional byte
    count is refused. Raises ValueError for anything else, including negative sizes.
    """
    if isinstance(value, bool):
        raise ValueError(f"not a size: {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"not a non-negative size: {value!r}")
        return value
    if isinstance(value, float):
        if not math.isfinite(value) or value < 0 or not value.is_integer():
            raise ValueError(f"not a whole non-negative size: {value!r}")
        return int(value)
    if not isinstance(value, str):
        raise ValueError(f"not a size: {value!r}")
    match = _SIZE.fullmatch(value.strip())
    if match is None:
        raise ValueError(f"not a size: {value!r}")
    from decimal import Decimal, InvalidOperation  # here: only a size given as text needs it

    try:
        number = Decimal(match.group(1))
    except InvalidOperation:  # pragma: no cover - the pattern only admits decimals
        raise ValueError(f"not a size: {value!r}") from None
    total = number * _UNITS[(match.group(2) or "").lower()]
    if total != total.to_integral_value():
        raise ValueError(f"not a whole number of bytes: {value!r}")
    return int(total)


def format_size(size: int) -> str:
    """Format `size` bytes exactly, in the largest unit that divides it ("50GiB", "200MB")."""
    if size < 0:
        raise ValueError(f"negative size: {size!r}")
    for unit, factor in _FORMAT_UNITS:
        if size and size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)
